// JobService's side of the job lifecycle (job_lifecycle.h): what becomes of
// each ended process and attempt, which attempt comes next, and the run's
// final exit code. The rules are the table's; this file applies them.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "daemon/core/clock.h"
#include "daemon/jobs/job_service.h"
#include "daemon/crashes/crash_rules.h"
#include "protocol/error.h"

namespace lpd::daemon {
namespace {

/// The latest result of each test (highest attempt; the last one within it),
/// by nodeid. The keys view `results`' nodeids: use it before `results` changes.
/// Hashed, not ordered: it is built once per attempt over every result.
std::unordered_map<std::string_view, const TestResult*> latest_results(const std::vector<TestResult>& results) {
  std::unordered_map<std::string_view, const TestResult*> latest;
  latest.reserve(results.size());
  for (const auto& r : results) {
    auto& slot = latest[r.nodeid];
    if (!slot || r.attempt >= slot->attempt) slot = &r;
  }
  return latest;
}

/// Writes `lines` to `path` (lpd's own run directory), one per line, 0600,
/// handed to `owner` so the command running as them can read it.
void write_lines_for(const std::string& path, const std::vector<std::string>& lines,
                     const std::optional<Credentials>& owner) {
  std::string text;
  for (const auto& line : lines) {
    if (line.find('\n') != std::string::npos) continue;  // not a nodeid any runner makes
    text += line;
    text.push_back('\n');
  }
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    throw protocol::Error(protocol::ErrorCode::kInternal, "cannot write " + path + ": " + std::strerror(errno));
  if (owner && ::fchown(fd.get(), owner->uid, owner->gid) != 0)
    throw protocol::Error(protocol::ErrorCode::kInternal, "cannot hand " + path + " to uid " + std::to_string(owner->uid));
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw protocol::Error(protocol::ErrorCode::kInternal, "cannot write " + path + ": " + std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

void JobService::write_selection_files(const Supervised& s) const {
  const std::string dir = "runs/" + s.run_id + "/";
  if (s.job.attempt_kind == AttemptKind::kIsolatedRerun)
    write_lines_for(store_.path(dir + "only-nodeids.txt"), {s.job.attempt_only}, s.job.spec.run_as);
  else if (!s.job.plan.excluded.empty())
    write_lines_for(store_.path(dir + "deselect.txt"), s.job.plan.excluded, s.job.spec.run_as);
}

void JobService::add_result(Supervised& s, TestResult result, bool told_by_controller) {
  result.attempt = std::max(1, s.job.attempt);
  keep_within_budget(result, s.failure_text_bytes);
  auto data = result.to_json();
  if (told_by_controller) data["told_by_controller"] = true;
  events_.publish("test.finish", std::move(data), s.run_id, s.owner);
  s.results.push_back(std::move(result));
}

void JobService::settle_end(Supervised* s, const WorkerActivity& activity, const ExitStatus& end) {
  const double now = wall_now();
  auto crash = activity.crash_on(end, now);
  const bool stopping = s && s->job.stop_requested;
  switch (worker_end_verdict(crash.has_value(), stopping, crash ? crash->signal : std::nullopt)) {
    case WorkerEndVerdict::kNothing:
      return;
    case WorkerEndVerdict::kCrash:
      record_crash(s, std::move(*crash));
      return;
    case WorkerEndVerdict::kInterrupted:
      if (!activity.current_test()) return;  // stopped between tests: nothing was cut short
      TestResult r;
      r.nodeid = *activity.current_test();
      r.outcome = "interrupted";
      r.phase = activity.current_phase();
      if (r.phase.empty()) r.phase = "call";
      r.duration = activity.running_for(now);
      r.message = "interrupted: the run was stopped" +
                  (crash->signal ? " (" + signal_name(*crash->signal) + ")" : std::string());
      r.worker_id = activity.worker_id();
      add_result(*s, std::move(r));
      return;
  }
}

bool JobService::passed_then_crashed(const Supervised& s, const TestResult& r) {
  // The last crash of r's test (s.crashes is in the order recorded) and how
  // many results there were then: a crash of the same attempt recorded
  // after r means the process died in that test after its passed reports
  // (a __del__ or a hook after the teardown report, seen by an xdist
  // controller before the death): r is no pass.
  const Crash* last = nullptr;
  for (const auto& c : s.crashes)
    if (c.nodeid == r.nodeid) last = &c;
  if (!last || last->attempt != r.attempt) return false;
  const auto mark = s.results_at_crash.find(r.nodeid);
  if (mark == s.results_at_crash.end() || s.results.empty()) return false;
  const auto index = static_cast<std::size_t>(&r - s.results.data());
  return index < s.results.size() && index < mark->second;
}

void JobService::mark_flaky_crashes(Supervised& s) {
  if (std::all_of(s.crashes.begin(), s.crashes.end(), [](const Crash& c) { return c.flaky || c.nodeid.empty(); }))
    return;  // the usual case: nothing to look up
  const auto latest = latest_results(s.results);
  for (auto& c : s.crashes) {
    if (c.flaky || c.nodeid.empty()) continue;
    auto it = latest.find(c.nodeid);
    if (it == latest.end()) continue;
    const TestResult& r = *it->second;
    // Passed when run again after the crash: a later attempt (an isolated
    // rerun, a retry), or a pytest-rerunfailures rerun in the same one.
    if (r.outcome != "passed") continue;
    if (passed_then_crashed(s, r)) continue;
    bool rerun_after = r.attempt > c.attempt || (r.attempt == c.attempt && r.reruns > 0);
    if (!rerun_after && r.attempt == c.attempt) {
      // Passed in the same attempt, reported after the crash: something
      // ran it again (xdist never re-runs a crashed test by itself).
      auto mark = s.results_at_crash.find(c.nodeid);
      rerun_after = mark != s.results_at_crash.end() && mark->second <= s.results.size() &&
                    std::any_of(s.results.begin() + static_cast<std::ptrdiff_t>(mark->second), s.results.end(),
                                [&](const TestResult& later) { return &later == &r; });
    }
    if (!rerun_after) continue;
    c.flaky = true;
    if (c.crash_id != 0 && !crashes_.mark_flaky(c.crash_id))
      spdlog::warn("run {}: crash {} is not in the store", s.run_id, c.crash_id);
    spdlog::info("run {}: the crash of {} (attempt {}) is flaky: it passed in attempt {}", s.run_id, c.nodeid,
                 c.attempt, r.attempt);
  }
}

void JobService::command_result(Supervised& s, const ExitStatus& end, bool no_crash_yet, pid_t command_pid) {
  // The command's shim pinned its death on the session already (a crash in
  // a conftest's pytest_sessionstart, say): that crash's testcase says how
  // the command ended; a second testcase would count one death twice.
  if (!no_crash_yet && s.job.shim_joined) return;
  const std::string nodeid = command_test_name(s.job.spec.argv);
  const double now = wall_now();
  // (full disk) A previous lpd may have recorded this death
  // already, pinned on its test, and lost only what it learned since (its
  // journal and job.json writes failed): the same pid in the same attempt
  // is the same crash, never a second one.
  const int attempt = std::max(1, s.job.attempt);
  const bool known = std::any_of(s.crashes.begin(), s.crashes.end(),
                                 [&](const Crash& c) { return same_death(c, attempt, command_pid); });
  const bool crashed = end.signal && no_crash_yet && !known &&
                       worker_end_verdict(true, s.job.stop_requested, end.signal) == WorkerEndVerdict::kCrash;
  if (crashed)
    record_crash(&s, command_crash(s.run_id, nodeid, command_pid, *end.signal, attempt, s.owner, s.job.created_at, now));
  TestResult r;
  r.nodeid = nodeid;
  r.phase = "call";
  r.duration = now - s.job.created_at;
  r.worker_id = "command";
  if (end.signal) {
    r.outcome = s.job.stop_requested && !crashed ? "interrupted" : "error";
    r.message = "killed by " + signal_name(*end.signal);
  } else if (end.exit_code) {
    // Stopped, it did not get to finish, whatever code it chose to exit
    // with (a trap that exits 0): interrupted, never passed.
    r.outcome = s.job.stop_requested ? "interrupted" : *end.exit_code == 0 ? "passed" : "error";
    r.message = (s.job.stop_requested ? "interrupted: the run was stopped; " : "") + std::string("exited with code ") +
                std::to_string(*end.exit_code);
  } else {
    r.outcome = "error";
    r.message = "ended, lpd could not tell how (no exit status)";
  }
  // -- a failed command's JUnit testcase carries its newest output
  // (what a CI page shows of why it failed), saying what is left out and
  // what the run output cap dropped; a passing one none (pytest's default).
  if (r.outcome != "passed") {
    r.system_out = run_output_excerpt(output_path(s.run_id), kMaxSystemOut).value_or("");
    if (s.job.spec.separate_stderr)
      r.system_err = run_output_excerpt(output_path(s.run_id, OutputStream::kStderr), kMaxSystemOut).value_or("");
  }
  add_result(s, std::move(r));
}

void JobService::after_attempt(Supervised& s, const ExitStatus& end, std::size_t crashes_before, pid_t command_pid) {
  Job& job = s.job;
  if (job.attempt_kind != AttemptKind::kIsolatedRerun) {
    job.command_exit_code = end.exit_code;
    job.command_signal = end.signal;
  }
  // A command that reported no tests is one testcase of its own, carrying
  // its exit; its signal death is a crash of that testcase (nobody else to
  // pin it on). Such a command has no retry or rerun: this is its end.
  if (!job.tests_reported && job.attempt_kind != AttemptKind::kIsolatedRerun && job.state != JobState::kCollected)
    command_result(s, end, s.crashes.size() == crashes_before, command_pid);
  mark_flaky_crashes(s);

  AttemptReport report;
  report.kind = job.attempt_kind;
  report.stopping = job.stop_requested;
  // Every crash of this attempt, not only those settled at its end: an
  // xdist worker's crash is recorded while the attempt still runs. One that
  // already passed again (a pytest-rerunfailures rerun) needs no rerun.
  (void)crashes_before;
  const int attempt = std::max(1, job.attempt);
  for (const auto& c : s.crashes)
    if (c.attempt == attempt && !c.flaky && !c.nodeid.empty() && c.where != "command" &&
        std::find(report.crashed.begin(), report.crashed.end(), c.nodeid) == report.crashed.end())
      report.crashed.push_back(c.nodeid);
  if (job.attempt_kind == AttemptKind::kIsolatedRerun) {
    report.only = job.attempt_only;
    for (const auto& r : s.results)
      report.only_passed |= r.attempt == job.attempt && r.nodeid == job.attempt_only && r.outcome == "passed" &&
                            !passed_then_crashed(s, r);
  }
  const AttemptVerdict verdict = job.plan.attempt_ended(report);
  // Every state an attempt can end in has a row for every verdict
  // (job_lifecycle_test); none is logged and changes nothing.
  const auto step = lifecycle_row(s, JobEvent::kAttemptEnded, verdict);
  if (!step) return;
  const JobAction action = step->action;
  if (action == JobAction::kStartRerun || action == JobAction::kStartRetry) {
    job.attempt_kind = action == JobAction::kStartRerun ? AttemptKind::kIsolatedRerun : AttemptKind::kRetry;
    job.attempt_only = action == JobAction::kStartRerun ? job.plan.next_rerun() : "";
    try {
      start_attempt(s);
      return;
    } catch (const std::exception& e) {
      spdlog::error("run {}: cannot start attempt {}: {}", s.run_id, job.attempt, e.what());
    }
    // The next attempt could not be spawned: the job ends with what it has.
    if (const auto failed = lifecycle_row(s, JobEvent::kStartFailed)) finish_job(s, *failed, end.exit_code, end.signal);
    return;
  }
  if (action != JobAction::kFinish) return;
  finish_job(s, *step, end.exit_code, end.signal);
}

FinalFacts JobService::final_facts(const Supervised& s) const {
  FinalFacts f;
  f.exit_code = s.job.command_exit_code;
  f.signal = s.job.command_signal;
  f.stopped = s.job.stop_requested;
  f.fail_on_flaky = s.job.spec.fail_on_flaky;
  f.results_cut = s.results_cut;
  std::unordered_set<std::string_view> crashed;  // views of s.crashes' nodeids (a few)
  for (const auto& c : s.crashes) {
    if (c.nodeid.empty()) {
      if (f.outside_crashes++ == 0) f.outside_signal = c.signal;
    } else if (c.flaky) {
      ++f.flaky_crashes;
    } else {
      ++f.test_crashes;
    }
    crashed.insert(c.nodeid);
    f.results_lost |= results_lost_with(c);
  }
  for (const auto& r : s.results)
    if (r.outcome == "error" && is_session_phase(r.phase)) ++f.session_errors;
  const auto latest = latest_results(s.results);
  for (const auto& [nodeid, r] : latest) {
    if (is_session_phase(r->phase)) continue;
    if (r->outcome == "interrupted") ++f.interrupted_tests;
    if (r->outcome == "failed" || r->outcome == "error") ++f.failed_tests;
  }
  // A collected test ran when it crashed or its latest result is a test's
  // (not a failure outside tests): looked up, not copied into a third set.
  // A --collect-only run ran none on purpose: none "never ran".
  if (s.job.collect_only()) return f;
  for (const auto& nodeid : s.collected) {
    const auto it = latest.find(nodeid);
    const bool ran = (it != latest.end() && !is_session_phase(it->second->phase)) || crashed.count(nodeid);
    f.never_ran += ran ? 0 : 1;
  }
  return f;
}

}  // namespace lpd::daemon
