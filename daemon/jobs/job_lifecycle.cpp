#include "daemon/jobs/job_lifecycle.h"

#include "protocol/name_table.h"

#include "daemon/crashes/crash.h"
#include "daemon/core/record_field.h"

#include <algorithm>
#include <array>
#include <csignal>

#include "daemon/jobs/job.h"

namespace lpd::daemon {
namespace {

using JS = JobState;
using JE = JobEvent;
using JV = AttemptVerdict;
using JA = JobAction;

constexpr std::array<JobTransition, 18> kJobLifecycle{{
    // from            event               verdict          to               action
    {JS::kCreated,     JE::kStarted,        JV::kAny,         JS::kInProgress,  JA::kNone},
    {JS::kInProgress,  JE::kStarted,        JV::kAny,         JS::kInProgress,  JA::kNone},  // a retry or rerun
    {JS::kCollected,   JE::kStarted,        JV::kAny,         JS::kInProgress,  JA::kNone},
    {JS::kInProgress,  JE::kCollected,      JV::kAny,         JS::kCollected,   JA::kNone},
    {JS::kCreated,     JE::kStopRequested,  JV::kAny,         JS::kTerminating, JA::kSignalStop},
    {JS::kInProgress,  JE::kStopRequested,  JV::kAny,         JS::kTerminating, JA::kSignalStop},
    {JS::kCollected,   JE::kStopRequested,  JV::kAny,         JS::kTerminating, JA::kSignalStop},
    {JS::kTerminating, JE::kStopRequested,  JV::kAny,         JS::kTerminating, JA::kSignalStop},  // again: sooner
    {JS::kCreated,     JE::kAttemptEnded,   JV::kAny,         JS::kDone,        JA::kFinish},  // it never started
    {JS::kInProgress,  JE::kAttemptEnded,   JV::kRerunDue,    JS::kInProgress,  JA::kStartRerun},
    {JS::kInProgress,  JE::kAttemptEnded,   JV::kRetryDue,    JS::kInProgress,  JA::kStartRetry},
    {JS::kInProgress,  JE::kAttemptEnded,   JV::kNothingMore, JS::kDone,        JA::kFinish},
    {JS::kInProgress,  JE::kAttemptEnded,   JV::kStopped,     JS::kDone,        JA::kFinish},
    {JS::kCollected,   JE::kAttemptEnded,   JV::kAny,         JS::kDone,        JA::kFinish},  // --collect-only: no retry
    {JS::kTerminating, JE::kAttemptEnded,   JV::kAny,         JS::kDone,        JA::kFinish},
    {JS::kDone,        JE::kAttemptEnded,   JV::kAny,         JS::kDone,        JA::kNone},  // already settled
    {JS::kCreated,     JE::kStartFailed,    JV::kAny,         JS::kDone,        JA::kFinish},  // run.start's launch failed
    {JS::kInProgress,  JE::kStartFailed,    JV::kAny,         JS::kDone,        JA::kFinish},  // a retry or rerun's did
}};

constexpr std::pair<AttemptKind, std::string_view> kKindNames[] = {
    {AttemptKind::kFull, "full"}, {AttemptKind::kRetry, "retry"}, {AttemptKind::kIsolatedRerun, "rerun"}};

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

std::string_view to_string(AttemptKind kind) { return protocol::name_in(kKindNames, kind, "full"); }

AttemptKind attempt_kind_from_string(std::string_view text) {
  return protocol::value_named(kKindNames, text).value_or(AttemptKind::kFull);
}

std::string_view to_string(JobEvent event) {
  switch (event) {
    case JE::kStarted: return "started";
    case JE::kCollected: return "collected";
    case JE::kStopRequested: return "stop_requested";
    case JE::kAttemptEnded: return "attempt_ended";
    case JE::kStartFailed: return "start_failed";
  }
  return "unknown";
}

std::span<const JobTransition> job_lifecycle() { return kJobLifecycle; }

std::optional<JobTransition> job_step(JobState from, JobEvent event, AttemptVerdict verdict) {
  // A row for this exact verdict first, then one that takes any verdict.
  for (const auto& t : kJobLifecycle)
    if (t.from == from && t.event == event && t.verdict == verdict && verdict != JV::kAny) return t;
  for (const auto& t : kJobLifecycle)
    if (t.from == from && t.event == event && t.verdict == JV::kAny) return t;
  return std::nullopt;
}

AttemptVerdict AttemptPlan::attempt_ended(const AttemptReport& report) {
  if (report.kind == AttemptKind::kIsolatedRerun) {
    // The rerun just done is the front of the queue: it leaves it, and goes
    // back to the front when it failed again and reruns are left.
    std::erase(rerun_queue, report.only);
    const int done = ++reruns_done[report.only];
    if (report.only_passed) {
      if (!contains(passed_on_rerun, report.only)) passed_on_rerun.push_back(report.only);
    } else if (done < rerun_crashed && !report.stopping) {
      rerun_queue.insert(rerun_queue.begin(), report.only);
    }
  } else {
    bool any_new = false;
    for (const auto& nodeid : report.crashed) {
      if (nodeid.empty() || contains(excluded, nodeid)) continue;
      any_new = true;
      excluded.push_back(nodeid);
      if (rerun_crashed > 0) rerun_queue.push_back(nodeid);
    }
    if (any_new && retries_done < retry_crashed) retry_pending = true;
  }
  if (report.stopping) return JV::kStopped;
  if (!rerun_queue.empty()) return JV::kRerunDue;
  if (retry_pending) {
    retry_pending = false;
    ++retries_done;
    return JV::kRetryDue;
  }
  return JV::kNothingMore;
}

std::string AttemptPlan::next_rerun() const { return rerun_queue.empty() ? "" : rerun_queue.front(); }

nlohmann::json AttemptPlan::to_json() const {
  return {{"retry_crashed", retry_crashed}, {"rerun_crashed", rerun_crashed}, {"retries_done", retries_done},
          {"excluded", excluded},           {"rerun_queue", rerun_queue},     {"reruns_done", reruns_done},
          {"passed_on_rerun", passed_on_rerun}, {"retry_pending", retry_pending}};
}

AttemptPlan AttemptPlan::from_json(const nlohmann::json& j) {
  AttemptPlan p;
  if (!j.is_object()) return p;
  p.retry_crashed = field_or(j, "retry_crashed", 0);
  p.rerun_crashed = field_or(j, "rerun_crashed", 0);
  p.retries_done = field_or(j, "retries_done", 0);
  p.excluded = field_or(j, "excluded", std::vector<std::string>{});
  p.rerun_queue = field_or(j, "rerun_queue", std::vector<std::string>{});
  p.reruns_done = field_or(j, "reruns_done", std::map<std::string, int>{});
  p.passed_on_rerun = field_or(j, "passed_on_rerun", std::vector<std::string>{});
  p.retry_pending = field_or(j, "retry_pending", false);
  return p;
}

WorkerEndVerdict worker_end_verdict(bool crash_found, bool stopping, std::optional<int> signal) {
  if (!crash_found) return WorkerEndVerdict::kNothing;
  if (!stopping) return WorkerEndVerdict::kCrash;
  if (!signal) return WorkerEndVerdict::kInterrupted;  // cut short without a clean end
  switch (*signal) {
    case SIGINT:
    case SIGTERM:
    case SIGHUP:
    case SIGKILL:
      return WorkerEndVerdict::kInterrupted;
    default:
      return WorkerEndVerdict::kCrash;
  }
}

int final_returncode(const FinalFacts& f) {
  const int own = f.signal ? 128 + *f.signal : f.exit_code.value_or(1);
  if (f.stopped) return own != 0 ? own : (f.interrupted_tests > 0 || f.test_crashes > 0 ? 1 : 0);
  if (f.outside_crashes > 0 || f.session_errors > 0) {
    if (own != 0 && own != 5) return own;
    return f.outside_signal ? 128 + *f.outside_signal : 1;
  }
  if (f.test_crashes > 0 || (f.flaky_crashes > 0 && f.fail_on_flaky)) return own != 0 ? own : 1;
  if (f.interrupted_tests > 0) return own != 0 ? own : 1;
  if (f.flaky_crashes > 0 && own != 0) {
    // The command's own failure may be the flaky crash itself: it died of
    // it (a single pytest process), or xdist counted the crashed worker's
    // test as failed. Anything else failing keeps the command's code.
    const bool explained = f.failed_tests == 0 && f.never_ran == 0 && (f.signal.has_value() || own == 1);
    return explained ? 0 : own;
  }
  return own;
}

std::string run_verdict_text(const FinalFacts& f, int returncode, bool signal_is_verdict, int attempts,
                             std::size_t crashes) {
  // The facts are of the command's last full run: with isolated reruns
  // after it, that is not the last attempt.
  std::string text = attempts > 1 ? "its last full run " : "";
  // Neither: lpd-monitor, which keeps the exit status, was killed too. No
  // code is made up for it (a -1 read as the command's own).
  const bool unknown_end = !f.signal && !f.exit_code;
  text += f.signal      ? "killed by " + signal_name(*f.signal)
          : unknown_end ? "ended with no exit status lpd could read (its lpd-monitor is gone)"
                        : "exited with code " + std::to_string(*f.exit_code);
  if (crashes > 0) text += ", " + std::to_string(crashes) + " crash(es)";
  if (f.flaky_crashes > 0) text += ", " + std::to_string(f.flaky_crashes) + " flaky";
  if (f.interrupted_tests > 0) text += ", " + std::to_string(f.interrupted_tests) + " interrupted";
  if (f.never_ran > 0)
    text += ", " + std::to_string(f.never_ran) +
            (f.results_cut    ? " without a known result (lpd kept no more of this run's events past its limit, "
                                "--run-events-max, and was restarted: they may have run)"
             : f.results_lost ? " without a result (never ran, or ran while lpd was away and lost with the crash)"
                              : " never ran");
  const int own = f.signal ? 128 + *f.signal : f.exit_code.value_or(1);
  if ((returncode == own && !unknown_end) || signal_is_verdict) return text;
  // The reason, in final_returncode's order.
  std::string why;
  if (returncode == 0)
    why = "every crash passed when re-run";
  else if (f.stopped)
    why = f.interrupted_tests > 0 ? "it was stopped with tests unfinished" : "it was stopped after a test crashed";
  else if (f.outside_crashes > 0 || f.session_errors > 0)
    why = "a crash or error outside any test";
  else if (f.test_crashes > 0 || (f.flaky_crashes > 0 && f.fail_on_flaky))
    why = f.test_crashes > 0 ? "a test crashed" : "a flaky crash (--fail-on-flaky)";
  else if (f.interrupted_tests > 0)
    why = "tests were interrupted";
  else if (unknown_end)
    why = "how the command ended is not known";
  text += "; the run ";
  text += returncode == 0 ? "passes" : "fails";
  text += " with exit code " + std::to_string(returncode);
  if (!why.empty()) text += ": " + why;
  return text;
}

}  // namespace lpd::daemon
