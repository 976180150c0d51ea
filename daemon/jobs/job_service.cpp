#include "daemon/jobs/job_service.h"
#include "daemon/jobs/output_push.h"
#include "daemon/os/remove_tree.h"
#include "daemon/core/storage_failure.h"
#include "daemon/core/record_field.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>

#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

#include "daemon/core/clock.h"
#include "daemon/os/heap_trim.h"
#include "daemon/os/cgroup.h"
#include "daemon/os/leftover_test.h"
#include "daemon/os/process_identity.h"
#include "daemon/jobs/junit_of_job.h"
#include "daemon/jobs/attempt_banner.h"
#include "daemon/jobs/run_result.h"
#include "daemon/os/as_user.h"
#include "daemon/os/run_as.h"
#include "daemon/core/untrusted_file.h"
#include "daemon/os/user_files.h"
#include "daemon/crashes/crash_rules.h"
#include "daemon/os/cgroup.h"  // issue 14 (x14tree)
#include "daemon/os/leftover_test.h"  // h14left
#include "daemon/jobs/attempt_banner.h"  // h18cli
#include "daemon/jobs/run_result.h"      // h18cli
#include "protocol/message.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

namespace {

std::string parent_of_path(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

constexpr double kDefaultStopGrace = 10;

std::string env_value(const std::vector<std::string>& env, const std::string& key) {
  for (const auto& kv : env)
    if (kv.size() > key.size() && kv.compare(0, key.size(), key) == 0 && kv[key.size()] == '=')
      return kv.substr(key.size() + 1);
  return "";
}

void set_env(std::vector<std::string>& env, const std::string& key, const std::string& value) {
  for (auto& kv : env) {
    if (kv.size() > key.size() && kv.compare(0, key.size(), key) == 0 && kv[key.size()] == '=') {
      kv = key + "=" + value;
      return;
    }
  }
  env.push_back(key + "=" + value);
}

}  // namespace

JobService::JobService(boost::asio::io_context& io, EventBus& events, const StateStore& store, CrashStore& crashes,
                       RunRegistry& runs, ProcessLauncher& launcher, const AccessPolicy& access,
                       JobEnvironment environment, SessionDrain& drain)
    : io_(io),
      events_(events),
      store_(store),
      crashes_(crashes),
      runs_(runs),
      launcher_(launcher),
      access_(access),
      environment_(std::move(environment)),
      drain_(drain),
      persist_retry_(io),
      heap_trim_(io.get_executor()),
      // -- the run output cap says what it dropped as an event.
      output_cap_(io, environment_.run_output, store_.path("runs"), [this](const RunOutputCap::Dropped& d) {
        events_.publish("run.output_dropped",
                        {{"run_id", d.run_id},
                         {"stream", to_string(d.stream)},
                         {"dropped_bytes", d.parts.dropped()},
                         {"size", d.parts.size},
                         {"disk_bytes", d.parts.disk_bytes},
                         {"head_bytes", d.parts.head_end < d.parts.kept_from ? d.parts.head_end : 0}},
                        d.run_id, d.owner);
      }) {}

// Both live in runs/<id>/, a directory of lpd's that the run's user cannot
// write: the monitor writes the exit status there as lpd's user and drops to
// the run's user only in the command, so nothing the command does can plant
// a link or a FIFO where lpd reads, or forge how it ended. The output log is
// handed to the run's user (mode 0600): it is theirs to read.
std::string JobService::output_path(const std::string& run_id, OutputStream stream) const {
  return store_.path("runs/" + run_id + "/" + std::string(output_file_name(stream)));
}
std::string JobService::status_path(const std::string& run_id) const {
  return store_.path("runs/" + run_id + "/exit.json");
}

void JobService::report_error(Supervised& s, std::string message) {
  spdlog::error("run {}: {}", s.run_id, message);
  s.job.report_errors.push_back(std::move(message));
  persist(s);
}

void JobService::write_env_file(const std::string& path, const std::vector<std::string>& env) {
  std::string text;
  for (const auto& entry : env) {
    if (entry.find('\0') != std::string::npos) continue;  // cannot be passed to exec anyway
    text += entry;
    text.push_back('\0');
  }
  ::unlink(path.c_str());
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) throw Error(ErrorCode::kInternal, "cannot write " + path + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 && StorageFailure::is_resource_errno(errno))
      throw StorageFailure(errno, parent_of_path(path), "writing the command's environment");
    if (n <= 0) throw Error(ErrorCode::kInternal, "cannot write " + path + ": " + std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
}

UniqueFd JobService::open_output_log(const std::string& path, const std::optional<Credentials>& owner) {
  // Appended across attempts. O_NOFOLLOW/O_NONBLOCK and the regular-file
  // check hold even if something was planted before lpd made the directory.
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    throw Error(ErrorCode::kInternal, "cannot open the run's log " + path + ": " +
                                          (fd ? "not a regular file" : std::strerror(errno)));
  if (owner && ::fchown(fd.get(), owner->uid, owner->gid) != 0)
    throw Error(ErrorCode::kInternal, "cannot hand the run's log " + path + " to uid " + std::to_string(owner->uid));
  return fd;
}

std::optional<json> JobService::read_exit_status(const std::string& run_id) const {
  // lpd-monitor writes a few hundred bytes; anything larger is not its file.
  constexpr std::size_t kMaxStatusBytes = 64 * 1024;
  auto text = read_untrusted_file(status_path(run_id), kMaxStatusBytes);
  // A monitor started by an lpd older than this one wrote into io/.
  if (!text) text = read_untrusted_file(store_.path("runs/" + run_id + "/io/exit.json"), kMaxStatusBytes);
  if (!text) return std::nullopt;
  auto value = json::parse(*text, nullptr, false);
  if (value.is_discarded() || !value.is_object()) return std::nullopt;
  return value;
}

JobService::Supervised* JobService::find(const std::string& run_id) {
  auto it = jobs_.find(run_id);
  return it == jobs_.end() ? nullptr : it->second.get();
}

protocol::Error JobService::not_supervised(const std::string& run_id) const {
  // A run that joined lpd by itself (plain pytest with the plugin) is in
  // `lpctl runs -a` too: say why attach and report know nothing of it.
  if (runs_.find(run_id))
    return Error(ErrorCode::kNotFound, "run \"" + run_id + "\" was not started by lpctl run (its processes joined "
                                       "lpd by themselves), so lpd holds no output, job or report of it; its tests "
                                       "and crashes are in lpctl events --run-id and lpctl crashes --run-id");
  return Error(ErrorCode::kNotFound, "no supervised run \"" + run_id + "\"");
}

JobService::Supervised& JobService::known(const std::string& run_id) {
  auto* s = find(run_id);
  if (!s) throw not_supervised(run_id);
  return *s;
}

JobService::Supervised& JobService::supervised(const std::string& run_id) {
  Supervised& s = known(run_id);
  load_history(s);
  return s;
}

void JobService::load_history(Supervised& s) {
  if (s.history_loaded) return;
  s.history_loaded = true;
  if (!s.job_loaded) {
    s.job_loaded = true;
    auto stored = store_.read_json("runs/" + s.run_id + "/job.json");
    try {
      if (!stored) throw std::runtime_error("unreadable");
      s.job = Job::from_json(*stored);
    } catch (const std::exception& e) {
      spdlog::error("run {}: job.json is not a job lpd wrote ({}); only its end is known", s.run_id, e.what());
    }
    s.job.state = JobState::kDone;  // what restore saw in it
  }
  // Whatever reached memory while the history was out (a late message) is
  // in the journal and the crash store too: read back once, not twice.
  s.results.clear();
  s.told_by_controller.clear();  // rebuilt from the journal's marked copies
  s.failure_text_bytes = 0;
  s.crashes.clear();
  s.unloaded_counts.reset();
  // Only its test.finish lines are parsed, one at a time: a run's journal
  // holds every event of the run (a big one, gigabytes), and a vector of all
  // of them parsed took lpd's memory for as long as the read.
  s.results_cut = false;
  store_.visit_lines("runs/" + s.run_id + "/events.jsonl", [&s](std::string_view text) {
    if (text.find("\"event\":\"test.finish\"") == std::string_view::npos) {
      // lpd's own line, written once: the results after it are not here.
      if (text.find("\"event\":\"run.events_not_kept\"") != std::string_view::npos) s.results_cut = true;
      return;
    }
    const auto line = json::parse(text, nullptr, false);
    if (!line.is_object() || line.value("event", "") != "test.finish") return;
    try {
      s.results.push_back(TestResult::from_json(line));
      keep_within_budget(s.results.back(), s.failure_text_bytes);
      // A copy its controller told: the worker's own may still come (a
      // ring handed over after this restart), and is dropped then too.
      if (const auto told = line.find("told_by_controller"); told != line.end() && told->is_boolean() && *told) {
        const TestResult& r = s.results.back();
        s.told_by_controller.emplace(r.attempt, r.worker_id, r.nodeid);
      }
    } catch (const json::exception&) {
      // a field of the wrong type: not a line lpd wrote
    }
  });
  for (const Crash* crash : crashes_.of_run(s.run_id)) s.crashes.push_back(*crash);
  if (s.collected.empty()) {
    for (const auto& line : store_.read_lines("runs/" + s.run_id + "/" + std::string(kCollectedFile))) {
      if (!line.is_array()) continue;  // not a line lpd wrote
      for (const auto& nodeid : line)
        if (nodeid.is_string() && !add_collected(s, nodeid.get<std::string>())) break;
    }
  }
  // A done run read back (a predecessor's, asked for by run.info or
  // run.report): its results leave memory again, as after its end; they
  // stayed until lpd stopped (7 MB per 10,000 tests, every run ever asked
  // about). The report it wrote then is still the report.
  if (s.job.state == JobState::kDone) {
    if (!s.report_written) {
      struct stat st {};
      const std::string junit = store_.path("runs/" + s.run_id + "/junit.xml");
      s.report_written = ::lstat(junit.c_str(), &st) == 0 && S_ISREG(st.st_mode);
    }
    unload_history_later(s);
  }
}

void JobService::persist(const Supervised& s) {
  try {
    store_.write_json("runs/" + s.run_id + "/job.json", s.job.to_json());
  } catch (const std::exception& e) {
    unwritten(s.run_id, "cannot write job of run " + s.run_id, e.what());
  }
}

void JobService::persist_run(const std::string& run_id) {
  const Run* run = runs_.find(run_id);
  if (!run) return;
  try {
    store_.write_json("runs/" + run_id + "/run.json", run->to_json());
  } catch (const std::exception& e) {
    unwritten(run_id, "cannot record the end of run " + run_id, e.what());
  }
}

void JobService::unwritten(const std::string& run_id, const std::string& what, const std::string& why) {
  // Logged once per outage of the run, not at every retry.
  if (!unpersisted_.insert(run_id).second) return;
  spdlog::error("{}: {}; written again when it can be", what, why);
  if (unpersisted_.size() == 1) arm_persist_retry();
}

void JobService::arm_persist_retry() {
  persist_retry_.expires_after(kPersistRetry);
  persist_retry_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    write_unpersisted();
    if (!unpersisted_.empty()) arm_persist_retry();
  });
}

void JobService::write_unpersisted() {
  for (auto it = unpersisted_.begin(); it != unpersisted_.end();) {
    const std::string& run_id = *it;
    try {
      if (const Supervised* s = find(run_id)) store_.write_json("runs/" + run_id + "/job.json", s->job.to_json());
      if (const Run* run = runs_.find(run_id)) store_.write_json("runs/" + run_id + "/run.json", run->to_json());
    } catch (const std::exception&) {
      ++it;  // still refused: the next retry
      continue;
    }
    spdlog::info("run {}: its job.json and run.json are written now", run_id);
    it = unpersisted_.erase(it);
  }
}

void JobService::last_try() {
  persist_retry_.cancel();
  write_unpersisted();
  for (const auto& run_id : unpersisted_)
    spdlog::error("lpd stops before it could write run {}'s job.json and run.json (its state directory {} refuses "
                  "writes): the next lpd will find it as it was last written",
                  run_id, store_.root());
}

void JobService::last_try_reports() {
  // A done run whose report the disk refused: its results are still here.
  for (auto& [run_id, s] : jobs_)
    if (s->job.state == JobState::kDone && s->history_loaded && !s->report_written) write_done_report(*s);
}

void JobService::set_state(Supervised& s, JobState state, std::string text) {
  s.job.state = state;
  s.job.text = std::move(text);
  persist(s);
  json data{{"type", "job"}, {"payload", s.job.payload(s.run_id)}};
  // the signal a done run's returncode 128+N stands for,
  // beside the payload, so the HTTP job API can report -N as relay-run does.
  if (state == JobState::kDone && s.job.signal) data["signal"] = *s.job.signal;
  events_.publish("job", std::move(data), s.run_id, s.owner);
}

std::optional<JobTransition> JobService::lifecycle_row(const Supervised& s, JobEvent event,
                                                       AttemptVerdict verdict) const {
  const auto step = job_step(s.job.state, event, verdict);
  if (!step)
    spdlog::error("run {}: the job lifecycle has no row for {} while {}; its state is left as it is", s.run_id,
                  to_string(event), to_string(s.job.state));
  return step;
}

std::optional<JobTransition> JobService::step_job(Supervised& s, JobEvent event, std::string text,
                                                  AttemptVerdict verdict) {
  const auto step = lifecycle_row(s, event, verdict);
  if (step) set_state(s, step->to, std::move(text));
  return step;
}

std::vector<std::string> JobService::child_environment(const Supervised& s) const {
  std::vector<std::string> env = s.job.spec.env;
  // Load the pytest shim with no install step; harmless for other commands.
  const std::string python_path = env_value(env, "PYTHONPATH");
  set_env(env, "PYTHONPATH", environment_.python_shim_dir + (python_path.empty() ? "" : ":" + python_path));
  const std::string plugins = env_value(env, "PYTEST_PLUGINS");
  if (plugins.find("lpd_pytest") == std::string::npos)
    set_env(env, "PYTEST_PLUGINS", plugins.empty() ? "lpd_pytest" : plugins + ",lpd_pytest");
  set_env(env, "LPD_SOCKET", environment_.socket_path);
  set_env(env, "LPD_RUN_ID", s.run_id);
  set_env(env, "LPD_ATTEMPT", std::to_string(s.job.attempt));
  // Pause-on-failure reaches the shims through the environment only: argv
  // is the command's (make or a GoogleTest binary would reject a flag).
  if (s.job.spec.pause_on_failure) set_env(env, "LPD_PAUSE_ON_FAILURE", "1");
  // Which tests to leave out or run alone, for shims that read them (the
  // runner adapter puts what the runner reads itself in argv).
  if (s.job.attempt_kind == AttemptKind::kIsolatedRerun)
    set_env(env, "LPD_ONLY_NODEIDS_FILE", store_.path("runs/" + s.run_id + "/only-nodeids.txt"));
  else if (!s.job.plan.excluded.empty())
    set_env(env, "LPD_DESELECT_FILE", store_.path("runs/" + s.run_id + "/deselect.txt"));
  return env;
}

json JobService::start(JobSpec spec, const Peer& caller) {
  spec.run_as = run_as(caller);
  // Resolve the command before creating anything, so "not found" leaves no
  // run behind; as the caller, so a root lpd reveals nothing of paths they
  // cannot see.
  check_runnable_as(spec.run_as, spec.argv.front(), spec.env, spec.cwd);
  // Files written for the caller must be theirs to write: say so now, not
  // when the run is over (the crash log is created empty, as pytest-abort's is).
  for (const auto& [path, mode] : {std::pair{spec.junit_path, UserWrite::kCheckWritable},
                                   std::pair{spec.crash_log_path, UserWrite::kAppend}}) {
    if (path.empty()) continue;
    if (auto error = write_file_as(spec.run_as, path, "", mode))
      throw Error(error->error == EACCES || error->error == EPERM ? ErrorCode::kPermissionDenied
                                                                   : ErrorCode::kBadRequest,
                  error->message);
  }

  runs_.check_room_for_run(caller.uid);  // before anything is made for it
  const double now = wall_now();
  const std::string run_id =
      runs_.unused_run_id(spec.name.empty() ? "" : spec.name + "-", now, [this] { return random_(); });

  Run run;
  run.run_id = run_id;
  run.owner = caller.uid;
  run.pid = 0;
  run.cwd = spec.cwd;
  run.argv = bounded_argv(spec.argv);  // the job keeps and runs the whole argv
  run.created_at = now;
  run.supervised = true;
  // On disk before anything knows of it: on a full disk the request fails
  // (unavailable, naming the directory) and leaves no ghost run behind.
  try {
    store_.write_json("runs/" + run_id + "/run.json", run.to_json());
  } catch (...) {
    forget_unstarted(run_id);
    throw;
  }
  runs_.restore(run);
  events_.publish("run.started", run.to_json(), run_id, run.owner);

  auto s = std::make_unique<Supervised>();
  s->run_id = run_id;
  s->owner = caller.uid;
  s->job.spec = std::move(spec);
  s->job.plan.retry_crashed = s->job.spec.retry_crashed;
  s->job.plan.rerun_crashed = s->job.spec.rerun_crashed;
  s->job.created_at = now;
  Supervised& ref = *s;
  jobs_[run_id] = std::move(s);
  set_state(ref, JobState::kCreated, "created");
  try {
    start_attempt(ref);
  } catch (const StorageFailure&) {
    // Nothing ran (the state directory failed before the launch): the run
    // is forgotten, in memory and on disk, rather than left active.
    jobs_.erase(run_id);
    runs_.erase(run_id);
    output_cap_.forget({run_id});
    forget_unstarted(run_id);
    events_.publish("run.ended", {{"run_id", run_id}, {"ended_at", wall_now()}}, run_id, caller.uid);
    throw;
  } catch (...) {
    if (const auto failed = lifecycle_row(ref, JobEvent::kStartFailed)) finish_job(ref, *failed, 127, std::nullopt);
    throw;
  }
  json reply = {{"run_id", run_id}, {"log", output_path(run_id)}, {"job", ref.job.payload(run_id)}};
  if (ref.job.spec.separate_stderr) reply["stderr_log"] = output_path(run_id, OutputStream::kStderr);
  return reply;
}

void JobService::forget_unstarted(const std::string& run_id) {
  UniqueFd runs_dir(::open(store_.path("runs").c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!runs_dir) return;
  if (const std::string why = remove_tree_at(runs_dir.get(), run_id); !why.empty())
    spdlog::warn("run {}: could not remove what its failed start left: {}", run_id, why);
}

// -- the re-run banner, in the output itself ------------
// In the log, not an event: every reader (lpctl run, attach, a replay, the
// file) gets it exactly between the two attempts' output. On a line of its
// own: the previous attempt may have died mid-line (pytest's progress dots).
void JobService::write_attempt_banner(int log_fd, const std::string& path, const std::string& banner) {
  if (banner.empty()) return;
  std::string text = banner;
  struct stat st {};
  if (::fstat(log_fd, &st) == 0 && st.st_size > 0) {
    // The last byte, read through a descriptor of its own (the command's is
    // write-only); a hole the output cap punched reads as 0: a newline then.
    UniqueFd reader(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    char last = 0;
    if (!reader || ::pread(reader.get(), &last, 1, st.st_size - 1) != 1 || last != '\n') text.insert(0, "\n");
  }
  // O_APPEND, before the attempt starts: nothing else writes the log now.
  if (::write(log_fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    spdlog::warn("cannot write the attempt banner into {}: {}", path, std::strerror(errno));
}

void JobService::start_attempt(Supervised& s) {
  // Looked up before anything is spawned: a job the table does not let
  // start an attempt (terminating, done) gets none.
  const auto step = lifecycle_row(s, JobEvent::kStarted);
  if (!step)
    throw Error(ErrorCode::kInternal, "run " + s.run_id + " cannot start an attempt while " +
                                          std::string(to_string(s.job.state)));
  s.job.attempt += 1;
  store_.make_dir("runs/" + s.run_id);
  write_selection_files(s);
  ::unlink(status_path(s.run_id).c_str());
  UniqueFd log_fd = open_output_log(output_path(s.run_id), s.job.spec.run_as);
  write_attempt_banner(log_fd.get(), output_path(s.run_id),
                       attempt_banner(s.job.attempt_kind, s.job.plan, s.job.attempt_only, s.job.attempt));
  output_cap_.started(s.run_id, s.owner, output_path(s.run_id));  // capped while it is written
  UniqueFd stderr_fd;
  if (s.job.spec.separate_stderr) {
    const std::string path = output_path(s.run_id, OutputStream::kStderr);
    stderr_fd = open_output_log(path, s.job.spec.run_as);
    output_cap_.started(s.run_id, s.owner, path, OutputStream::kStderr);
  }
  LaunchSpec spec;
  // The monitor runs as lpd; the command as the run's user (see output_path).
  // The monitor may run as root: it gets a fixed environment, and the
  // command's (the caller's LD_PRELOAD included) only reaches the command,
  // after it became the caller (see lpd-monitor's header).
  const std::string env_file = store_.path("runs/" + s.run_id + "/command.env");
  write_env_file(env_file, child_environment(s));
  spec.argv = {environment_.monitor_path, "--status", status_path(s.run_id), "--cwd", s.job.spec.cwd, "--env-file",
               env_file};
  // -- the monitor keeps the command's whole tree (its
  // cgroup in lpd's cgroup base, else as subreaper), so the launcher does
  // not put the monitor itself in one.
  spec.contain_tree = false;
  // Held until the monitor has forked the command and can forward them
  // (lpd-monitor unblocks them then): a run.stop right after run.start.
  spec.blocked_signals = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR2};
  if (const auto& cgroups = supervision_cgroup_base(); cgroups.usable()) {
    spec.argv.push_back("--cgroup-base");
    spec.argv.push_back(cgroups.dir);
  }
  if (const auto& who = s.job.spec.run_as) {
    std::string groups;
    for (gid_t g : who->groups) groups += (groups.empty() ? "" : ",") + std::to_string(g);
    for (std::string arg : {std::string("--uid"), std::to_string(who->uid), std::string("--gid"),
                            std::to_string(who->gid)})
      spec.argv.push_back(std::move(arg));
    if (!groups.empty()) {
      spec.argv.push_back("--groups");
      spec.argv.push_back(groups);
    }
  }
  if (s.job.spec.terminal_columns > 0) {  // on a pseudo-terminal
    spec.argv.push_back("--pty");
    spec.argv.push_back(std::to_string(s.job.spec.terminal_columns) + "x" + std::to_string(s.job.spec.terminal_rows));
  }
  spec.argv.push_back("--");
  for (const auto& arg : s.job.attempt_argv()) spec.argv.push_back(arg);
  spec.cwd = s.job.spec.cwd;
  spec.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  spec.stdout_fd = log_fd.get();
  spec.stderr_fd = stderr_fd ? stderr_fd.get() : log_fd.get();
  spec.new_session = true;
  const Launched launched = launcher_.launch(spec);
  log_fd.reset();
  stderr_fd.reset();
  s.job.monitor_pid = launched.pid;
  s.job.monitor_start_time = launched.start_time;
  const std::string run_id = s.run_id;
  s.monitor_watch = ExitWatch::child(io_, launched.pidfd, [this, run_id](const ExitStatus&) { attempt_ended(run_id); });
  std::string text = "running";
  if (s.job.attempt_kind == AttemptKind::kRetry)
    text = "re-running without " + std::to_string(s.job.plan.excluded.size()) + " crashed test(s), attempt " +
           std::to_string(s.job.attempt);
  else if (s.job.attempt_kind == AttemptKind::kIsolatedRerun)
    text = "re-running crashed test " + s.job.attempt_only + " alone (rerun " +
           std::to_string(s.job.plan.reruns_done[s.job.attempt_only] + 1) + " of " +
           std::to_string(s.job.plan.rerun_crashed) + "), attempt " + std::to_string(s.job.attempt);
  set_state(s, step->to, std::move(text));
  spdlog::info("run {}: attempt {} started (monitor pid {})", run_id, s.job.attempt, launched.pid);
}

void JobService::drain_sessions_where(const std::function<bool(const WorkerActivity&)>& matches) {
  // Draining dispatches messages that reach activities_: collect first.
  std::vector<std::uint64_t> sessions;
  for (const auto& [session_id, activity] : activities_)
    if (matches(activity)) sessions.push_back(session_id);
  for (auto session_id : sessions) drain_.drain(session_id);
}

void JobService::attempt_ended(const std::string& run_id) {
  Supervised* s = find(run_id);
  if (!s || s->job.state == JobState::kDone) return;
  s->monitor_watch.reset();
  s->readopted_watch.reset();
  if (s->kill_timer) s->kill_timer->cancel();
  auto status = read_exit_status(run_id);
  std::optional<int> exit_code, signal;
  // lpd-monitor's file, read as any record: a mistyped field is absent.
  if (status && field_or(*status, "state", "") == "exited") {
    signal = integer_field<int>(*status, "signal");
    exit_code = integer_field<int>(*status, "exit_code");
  } else {
    spdlog::warn("run {}: the monitor left no exit status", run_id);
  }
  ExitStatus end{signal, exit_code};
  const pid_t command_pid = status ? integer_field<pid_t>(*status, "pid").value_or(0) : 0;
  if (status) note_left_running(*s, *status);
  drain_sessions_where([&](const WorkerActivity& a) { return a.run_id() == run_id; });
  s = find(run_id);  // draining dispatched messages; look again
  if (!s) return;
  const std::size_t crashes_before = s->crashes.size();
  finalize_pending_of(run_id, end);
  // The controller may still hold its connection open in our queue; it is
  // dead now, so whatever it was running crashed with the job's status.
  for (auto it = activities_.begin(); it != activities_.end();) {
    if (it->second.run_id() == run_id && it->second.worker_id() == "controller") {
      settle_end(s, it->second, end);
      it = activities_.erase(it);
    } else {
      ++it;
    }
  }

  // A command that died while lpd was away (restarted) and never came back
  // to say which test it ran has still crashed: pinned on no test, so the
  // report cannot come out green beside an exit by a signal.
  if (end.signal && !s->job.stop_requested && s->job.tests_reported) {
    const int attempt = std::max(1, s->job.attempt);
    const bool pinned = std::any_of(s->crashes.begin(), s->crashes.end(), [&](const Crash& c) {
      return same_death(c, attempt, command_pid) || (c.attempt == attempt && c.worker_id == "controller");
    });
    if (!pinned)
      record_crash(s, unattributed_command_crash(run_id, command_pid, *end.signal, attempt, s->owner, wall_now()));
  }
  after_attempt(*s, end, crashes_before, command_pid);
}

void JobService::note_left_running(Supervised& s, const json& status) {
  const auto it = status.find("left_running");
  if (it == status.end() || !it->is_array()) return;
  // the test each started in. lpd-monitor names it from the
  // process's PYTEST_CURRENT_TEST ("test": an index into
  // "left_running_tests"); otherwise lpd compares its start time with the
  // spans of the tests this attempt ran, from the event history, built
  // here once (never on the per-test path) and only when needed.
  const auto tests_it = status.find("left_running_tests");
  const json no_tests = json::array();
  const json& named = tests_it != status.end() && tests_it->is_array() ? *tests_it : no_tests;
  const double attempt_started = field_or(status, "started_at", 0.0);
  std::optional<std::vector<TestSpan>> spans;  // built on first need
  bool history_reaches = true;
  auto test_spans = [&]() -> const std::vector<TestSpan>& {
    if (spans) return *spans;
    TestSpanBuilder builder;
    const auto& history = events_.history();
    history_reaches = !history.empty() && history.front().time <= attempt_started;
    for (const Event& e : history) {
      if (e.run_id != s.run_id || e.time < attempt_started) continue;
      const bool start = e.type == "test.start";
      if (!start && e.type != "test.finish") continue;
      // Parsed into a temporary: the history's events keep no tree.
      const json data = json::parse(e.data_text(), nullptr, false);
      const std::string worker = field_or(data, "worker_id", "");
      const std::string nodeid = field_or(data, "nodeid", "");
      if (start)
        builder.started(worker, nodeid, e.time);
      else
        builder.finished(worker, nodeid, e.time);
    }
    spans = builder.spans();
    return *spans;
  };
  // How late lpd may handle a test.start after the test began (the shim's
  // event ring is read within ~50 ms (session.h kRingWindow); more under load), and one clock tick
  // (/proc's start time is cut to whole ticks).
  constexpr double kEventLag = 0.5;
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const double tick = ticks > 0 ? 1.0 / static_cast<double>(ticks) : 0.01;
  constexpr std::size_t kMaxNodeidBytesKept = 256 * 1024;  // run.info stays far below a 1 MiB reply
  std::size_t nodeid_bytes = 0;
  for (const auto& l : s.job.left_running_processes)
    for (const auto& t : l.tests) nodeid_bytes += t.size();
  for (const auto& entry : *it) {
    if (!entry.is_object()) continue;
    const auto pid = integer_field<pid_t>(entry, "pid");
    if (!pid) continue;
    LeftProcess left;
    left.pid = *pid;
    left.argv = printable_utf8(field_or(entry, "argv", ""), 200);
    left.attempt = std::max(1, s.job.attempt);
    const auto index = integer_field<std::size_t>(entry, "test");
    const std::string phase = field_or(entry, "phase", "");
    if (index && *index < named.size() && named[*index].is_string() &&
        (phase == "setup" || phase == "call" || phase == "teardown")) {
      left.tests = {printable_utf8(named[*index].get<std::string>(), kMaxLeftoverNodeidBytes)};
      left.phase = phase;
      left.known_by = LeftProcess::kByEnvironment;
    } else if (!s.job.tests_reported) {
      // A command that reports no tests (a plain command): nothing to name.
    } else if (const auto started = entry.find("started_at"); started != entry.end() && started->is_number()) {
      const double started_at = started->get<double>();
      const auto& all = test_spans();
      if (history_reaches)
        attribute_by_start_time(left, tests_running_between(all, started_at, started_at + tick, kEventLag),
                                kEventLag);
      else
        left.unknown = "lpd's event history no longer reaches back to this attempt's start";
    }
    std::size_t bytes = 0;
    for (const auto& t : left.tests) bytes += t.size();
    if (nodeid_bytes + bytes > kMaxNodeidBytesKept) {
      left.tests.clear();
      left.phase.clear();
      left.known_by.clear();
      left.unknown = "its test's name is not kept: this run's leftovers named too many long nodeids";
    } else {
      nodeid_bytes += bytes;
    }
    const std::string line = left.line();
    spdlog::warn("run {}: attempt {} left {} running when its command ended; killed it", s.run_id, s.job.attempt,
                 line);
    if (s.job.left_running.size() < Job::kMaxLeftRunning) {
      s.job.left_running.push_back(line);
      s.job.left_running_processes.push_back(std::move(left));
    }
  }
  const auto count = integer_field<long long>(status, "left_running_count").value_or(0);
  if (count > static_cast<long long>(it->size()) && s.job.left_running.size() < Job::kMaxLeftRunning) {
    const std::string more = std::to_string(count - static_cast<long long>(it->size())) + " more not listed";
    spdlog::warn("run {}: attempt {} left {} running when its command ended; killed them", s.run_id, s.job.attempt,
                 more);
    s.job.left_running.push_back(more);
  }
}

namespace {

/// Bytes a process may still write on the file system of `dir`: what
/// statvfs says is free to a user (f_bavail), or to root (f_bfree: the
/// reserve too). nullopt when statvfs fails.
std::optional<std::uint64_t> free_bytes(const std::string& dir, bool root) {
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(root ? fs.f_bfree : fs.f_bavail) * fs.f_frsize;
}

}  // namespace

void JobService::finish_job(Supervised& s, const JobTransition& step, std::optional<int> exit_code,
                            std::optional<int> signal) {
  if (!s.job.command_exit_code && !s.job.command_signal) {  // it never got to run (a failed start)
    s.job.command_exit_code = exit_code;
    s.job.command_signal = signal;
  }
  const FinalFacts facts = final_facts(s);
  s.job.returncode = final_returncode(facts);
  // lpctl ends by the signal only when that is the run's verdict (a flaky
  // crash that passed on rerun is not).
  s.job.signal = facts.signal && *s.job.returncode == 128 + *facts.signal ? facts.signal : std::nullopt;
  s.job.ended_at = wall_now();
  std::string text = run_verdict_text(facts, *s.job.returncode, s.job.signal.has_value(), s.job.attempt,
                                      s.crashes.size());
  // -- what the command left running, killed by lpd-monitor
  if (!s.job.left_running.empty()) {
    text += "; " + std::to_string(s.job.left_running.size()) + " process(es) left running when the command ended, killed:";
    for (const auto& line : s.job.left_running) text += " [" + line + "]";
  }
  // -- a full state directory: the command writes its output straight into
  // its log there, and the verdict alone said nothing of a disk that could
  // take no more of it (the attack). Only what lpd saw is said: whether a
  // write of the command's failed, and whether that made it fail, lpd
  // cannot see.
  const bool as_root = !s.job.spec.run_as || s.job.spec.run_as->uid == 0;
  if (free_bytes(store_.path("runs/" + s.run_id), as_root) == std::optional<std::uint64_t>{0})
    text += "; note: lpd's state directory " + store_.root() +
            " had no space left when the command ended: its output log there could take no more output";
  // The done run's report, rendered once: kept in lpd's run directory (what
  // run.report serves once the results leave memory, and after a restart:
  // the never-run tests are nowhere else), and written where --junit asks.
  s.junit_cache = render_junit(s, s.job.ended_at);
  s.active_report.reset();
  write_done_report(s);
  if (!s.job.spec.junit_path.empty()) {
    // Before the run is done, so a failure is in the job and in run.done.
    if (auto error = write_file_as(s.job.spec.run_as, s.job.spec.junit_path, *s.junit_cache, UserWrite::kReplace))
      report_error(s, "JUnit report: " + error->message);
  }
  set_state(s, step.to, text);
  output_cap_.ended(s.run_id);  // its last writes, then it counts towards its owner's total
  // -- how it ended, in run.list (lpctl runs -a)
  if (Run* run = runs_.find(s.run_id)) {
    run->returncode = s.job.returncode;
    run->signal = s.job.signal;
    run->result = run_result(facts, *s.job.returncode);
  }
  if (runs_.end(s.run_id, s.job.ended_at)) {
    // (full disk) Out of a request: a refusal here must not end lpd. The
    // end is kept in memory and said, and run.json written again every
    // second until it goes in (a restart before that settles the run again).
    persist_run(s.run_id);
    events_.publish("run.ended", {{"run_id", s.run_id}, {"ended_at", s.job.ended_at}}, s.run_id, s.owner);
  }
  // Drain the last output before saying done.
  for (auto& a : s.attached)
    if (a.reading()) finish_attach(s, a);
  spdlog::info("run {} done: {}", s.run_id, text);
  unload_history_later(s);
}

void JobService::unload_history_later(Supervised& s) {
  if (!s.unload_timer) s.unload_timer = std::make_unique<boost::asio::steady_timer>(io_);
  s.unload_timer->expires_after(kKeepDoneResults);
  s.unload_timer->async_wait([this, run_id = s.run_id](boost::system::error_code ec) {
    if (ec) return;
    if (Supervised* sv = find(run_id)) unload_history(*sv);
  });
}

std::string JobService::render_junit(Supervised& s, double now) {
  JunitInput in =
      junit_input_of(s.job, std::move(s.results), std::move(s.crashes), std::move(s.collected), host_name(), now);
  if (s.results_cut) {
    in.results_missing = kResultsNotKept;
    in.not_run_reason = "result unknown: " + std::string(kResultsNotKept) + "; this test may have run";
  }
  struct GiveBack {
    JunitInput& in;
    Supervised& s;
    ~GiveBack() { lend_back(in, s.results, s.crashes, s.collected); }
  } give_back{in, s};
  return junit_report(in);
}

bool JobService::write_done_report(Supervised& s) {
  try {
    if (!s.junit_cache)
      s.junit_cache = render_junit(s, s.job.ended_at);
    store_.write_text("runs/" + s.run_id + "/junit.xml", *s.junit_cache, /*durable=*/false);
    s.report_written = true;
  } catch (const std::exception& e) {
    spdlog::warn("run {}: cannot keep its report: {}", s.run_id, e.what());
  }
  return s.report_written;
}

void JobService::unload_history(Supervised& s) {
  if (s.job.state != JobState::kDone || !s.history_loaded) return;
  if (std::any_of(s.attached.begin(), s.attached.end(), [](const Attached& a) { return a.reading(); })) {
    unload_history_later(s);  // an attach still drains the last output, then reads crashes
    return;
  }
  if (!s.report_written && !write_done_report(s)) {
    spdlog::warn("run {}: its results stay in memory until its report can be written", s.run_id);
    unload_history_later(s);
    return;
  }
  s.unloaded_counts = Supervised::Counts{s.results.size(), s.crashes.size()};
  // Swapped with empty ones: clear() would keep the capacity.
  std::vector<TestResult>().swap(s.results);
  s.failure_text_bytes = 0;
  std::vector<Crash>().swap(s.crashes);
  std::vector<std::string>().swap(s.collected);
  std::unordered_set<std::string>().swap(s.collected_index);
  s.collected_bytes = 0;
  s.collected_full = false;
  std::map<std::string, std::size_t>().swap(s.results_at_crash);
  s.junit_cache.reset();
  s.history_loaded = false;
  spdlog::debug("run {}: its results left memory ({} test(s), {} crash(es); its report is in its junit.xml)",
                s.run_id, s.unloaded_counts->tests, s.unloaded_counts->crashes);
  heap_trim_.request();
}

void JobService::finish_attach(Supervised& s, Attached& a) {
  a.unfinished = a.streams.size();
  Attached* attached = &a;
  for (auto& stream : a.streams)
    stream.tail->finish([this, run_id = s.run_id, attached] {
      Supervised* sv = find(run_id);
      if (sv && --attached->unfinished == 0) send_done(*sv, *attached);
    });
}

void JobService::send_done(Supervised& s, Attached& a) {
  auto sink = a.sink.lock();
  if (!sink) return;
  // output freed up to the end (an emptied log) sends no chunk to
  // carry the note: it goes on its own before run.done.
  for (const auto& stream : a.streams) {
    const auto parts = log_parts(output_path(s.run_id, stream.stream));
    if (!parts) continue;
    const std::uint64_t skipped_before = stream.gaps->skipped();
    if (std::string note = stream.gaps->before("", parts->size); !note.empty())
      sink->send(protocol::encode_push("run.output", {{"data", note},
                                                      {"stream", to_string(stream.stream)},
                                                      {"offset", parts->size},
                                                      {"dropped_bytes", stream.gaps->skipped() - skipped_before}}));
  }
  // The crashes for lpctl's summary lines: without their tracebacks (up to
  // 64 KiB each; crash.list and `lpctl crashes -v` have them), and only as
  // many as fit kDoneCrashBytes, the rest counted: run.done is one line,
  // and a line over the protocol's limit would cost lpctl the whole end of
  // the run (its verdict, its JUnit).
  json crashes = json::array();
  std::size_t crash_bytes = 0;
  std::size_t omitted = 0;
  for (const auto& c : s.crashes) {
    json line = c.to_json();
    line.erase("traceback");
    const std::size_t bytes = line.dump(-1, ' ', false, json::error_handler_t::replace).size();
    if (crash_bytes + bytes > kDoneCrashBytes) {
      ++omitted;
      continue;
    }
    crash_bytes += bytes;
    crashes.push_back(std::move(line));
  }
  sink->send(protocol::encode_push("run.done", {{"run_id", s.run_id},
                                                {"returncode", s.job.returncode.value_or(1)},
                                                {"signal", s.job.signal ? json(*s.job.signal) : json(nullptr)},
                                                {"attempts", s.job.attempt},
                                                {"tests_reported", s.job.tests_reported},
                                                {"shim_joined", s.job.shim_joined},
                                                {"runner", std::string(to_string(s.job.spec.runner))},
                                                {"crashes", crashes},
                                                {"crashes_omitted", omitted},
                                                {"report_errors", s.job.report_errors},
                                                {"text", s.job.text}}));
  a.streams.clear();
  // This attach is over: its entry goes, and with it the weak hold on the connection.
  s.attached.remove_if([&a](const Attached& other) { return &other == &a; });
}

void JobService::forget_runs(const std::set<std::string>& run_ids) {
  output_cap_.forget(run_ids);
  for (const auto& run_id : run_ids) {
    auto it = jobs_.find(run_id);
    if (it == jobs_.end()) continue;
    Supervised& s = *it->second;
    std::vector<Attached*> reading;
    for (auto& a : s.attached) {
      // A replay still under way stops here, saying why where its reader
      // looks (its output), then ends as the run did: never a silent cut.
      auto sink = a.sink.lock();
      for (const auto& stream : a.streams) {
        stream.tail->stop();  // no finish callback runs after this
        if (sink)
          sink->send(protocol::encode_push(
              "run.output", {{"data", "\n[lpd: run " + run_id +
                                          " was removed by retention (lpd start --keep-runs/--keep-days, or lpctl "
                                          "prune) while this replay was under way: the rest of its output is gone]\n"},
                             {"stream", to_string(stream.stream)},
                             {"offset", stream.tail->offset()}}));
      }
      a.streams.clear();  // no other note for the rest (send_done's is the output cap's)
      reading.push_back(&a);
    }
    for (Attached* a : reading) send_done(s, *a);
    unpersisted_.erase(run_id);
    jobs_.erase(it);  // its timers go with it; their callbacks look the run up by id
  }
}

void JobService::drop_attaches(std::uint64_t session) {
  for (auto& [_, s] : jobs_) {
    s->attached.remove_if([session](const Attached& a) {
      if (a.session != session) return false;
      for (const auto& stream : a.streams) stream.tail->stop();  // no finish callback runs after this
      return true;
    });
  }
}

json JobService::attach(const std::string& run_id, AttachFrom from, const std::shared_ptr<ReplySink>& sink,
                        std::uint64_t session, const DeferReply& defer) {
  Supervised& s = supervised(run_id);
  auto slot = sink->claim_stream("attach to run " + run_id);
  std::weak_ptr<ReplySink> weak = sink;
  std::vector<Attached::Stream> streams;
  const auto open_stream = [&](OutputStream stream, std::int64_t from) {
    // where the reader jumps over output the cap freed, a line says
    // how much (a replay never shows a log with a hole as if complete).
    auto gaps = std::make_shared<OutputGaps>(static_cast<std::uint64_t>(from));
    auto tail = LogTail::open(io_, output_path(run_id, stream), static_cast<std::uint64_t>(from),
                              [weak, gaps, stream](std::string_view bytes, std::uint64_t end_offset) {
                                auto sink = weak.lock();
                                if (!sink) return;
                                const std::uint64_t skipped_before = gaps->skipped();
                                const std::string note = gaps->before(bytes, end_offset);
                                std::optional<std::uint64_t> dropped;
                                if (gaps->skipped() > skipped_before) dropped = gaps->skipped() - skipped_before;
                                // written as text, no tree (one per window of output).
                                sink->send(encode_output_push(note, bytes, to_string(stream), end_offset, dropped));
                              });
    // A person (or a CI log) watches this: pytest's progress dots, one write
    // per test, are read in one go per window instead of a wake-up each.
    // 100 ms, still immediate to a person; every window costs lpd a
    // wake-up, a read and a push, and lpctl a wake-up, whatever it carries.
    tail->set_coalescing(std::chrono::milliseconds(100));
    tail->set_whole_utf8(true);  // each push is a JSON string: no character cut in two
    // Output is read no faster than this peer takes it.
    tail->set_throttle([weak](std::function<void()> resume) { return may_send_now(weak, std::move(resume)); });
    streams.push_back({stream, std::move(tail), std::move(gaps)});
  };
  open_stream(OutputStream::kStdout, from.offset);
  // A run whose job was read back after a restart knows its spec; a stand-in
  // (job_loaded false) was loaded by supervised() above.
  if (s.job.spec.separate_stderr) open_stream(OutputStream::kStderr, from.stderr_offset);
  Responder responder = defer();
  json reply{{"run_id", run_id}, {"job", s.job.payload(run_id)}, {"log", output_path(run_id)}};
  if (s.job.spec.separate_stderr) reply["stderr_log"] = output_path(run_id, OutputStream::kStderr);
  if (const auto parts = log_parts(output_path(run_id)))
    reply["output_dropped_bytes"] = parts->dropped();
  responder.ok(reply);
  s.attached.push_back({weak, std::move(streams), session, std::move(slot), 0});
  Attached& a = s.attached.back();
  if (s.job.state == JobState::kDone) {
    finish_attach(s, a);
  } else {
    for (auto& stream : a.streams) stream.tail->follow();
  }
  return json();
}

json JobService::stop(const std::string& id, std::optional<double> grace_seconds, std::int64_t signal) {
  // Who may stop it is the operation table's gate (supervised_run).
  Supervised& s = supervised(id);
  if (s.job.state == JobState::kDone) throw Error(ErrorCode::kConflict, "run " + s.run_id + " is already done");
  const double grace = grace_seconds.value_or(kDefaultStopGrace);
  const int signo = static_cast<int>(signal);
  if (signo != SIGINT && signo != SIGTERM && signo != SIGHUP)
    throw Error(ErrorCode::kBadRequest, "field \"signal\" must be SIGINT, SIGTERM or SIGHUP");
  // Every state but done has a row (job_lifecycle_test): none is a job
  // the table does not let stop, left as it is.
  const auto step = lifecycle_row(s, JobEvent::kStopRequested);
  if (!step)
    throw Error(ErrorCode::kConflict, "run " + s.run_id + " cannot be stopped while " +
                                          std::string(to_string(s.job.state)));
  s.job.stop_requested = true;
  set_state(s, step->to, "stopping (signal " + std::to_string(signo) + ")");
  // The monitor forwards the signal to the command's process group and,
  // on SIGUSR2, kills that group; it survives to record the exit status.
  ::kill(s.job.monitor_pid, signo);
  s.kill_timer = std::make_unique<boost::asio::steady_timer>(io_);
  s.kill_timer->expires_after(seconds_to_duration(grace));
  const pid_t monitor = s.job.monitor_pid;
  const std::string run_id = s.run_id;
  s.kill_timer->async_wait([this, run_id, monitor](boost::system::error_code ec) {
    if (ec) return;
    Supervised* sv = find(run_id);
    if (sv && sv->job.state != JobState::kDone && sv->job.monitor_pid == monitor) ::kill(monitor, SIGUSR2);
  });
  return {{"run_id", s.run_id}, {"job", s.job.payload(s.run_id)}};
}

json JobService::report(const std::string& id, std::optional<std::int64_t> offset, std::optional<std::int64_t> limit_asked) {
  Supervised& s = known(id);  // loaded only if the report needs it
  constexpr std::int64_t kChunk = kReportPieceBytes;
  const std::int64_t limit = limit_asked.value_or(kChunk);
  if (limit < 1) throw Error(ErrorCode::kBadRequest, "field \"limit\" must be at least 1");
  const std::int64_t from = offset.value_or(0);
  if (from < 0) throw Error(ErrorCode::kBadRequest, "field \"offset\" must be between 0 and the report's size");
  // The piece [from, end) of a report of `total` bytes, of which `window`
  // holds [from, from + window.size()): never cut inside a UTF-8 sequence,
  // so each piece is valid text.
  std::uint64_t snapshot = 0;  // 0: a done run's report, the same every time
  auto piece = [&](std::string_view window, std::int64_t total, std::size_t tests, std::size_t crashes) {
    if (!offset && total > kChunk)
      throw Error(ErrorCode::kTooLarge, "the report of run " + s.run_id + " is " + std::to_string(total) +
                                            " bytes, more than one reply carries: ask for it in pieces with "
                                            "\"offset\" and \"limit\" (lpctl report does)");
    if (from > total)
      throw Error(ErrorCode::kBadRequest,
                  "field \"offset\" must be between 0 and the report's size " + std::to_string(total));
    std::size_t n = static_cast<std::size_t>(std::min(total - from, std::min(limit, kChunk)));
    const std::size_t available = window.size();
    while (n > 0 && n < available && (static_cast<unsigned char>(window[n]) & 0xC0) == 0x80) --n;
    if (n == 0 && available > 0) n = std::min<std::size_t>(available, 4);
    const std::int64_t end = from + static_cast<std::int64_t>(n);
    return json{{"run_id", s.run_id},
                {"junit", window.substr(0, n)},
                {"offset", from},
                {"total", total},
                {"next", end < total ? json(end) : json(nullptr)},
                {"tests", tests},
                {"crashes", crashes},
                {"snapshot", snapshot}};
  };
  // A done run whose results left memory (this lpd's, or its
  // predecessor's): the report lpd wrote when they left, a piece at a time.
  // Its collected nodeids (never-run tests) are only in that file.
  if (s.job.state == JobState::kDone && !s.junit_cache) {
    // kChunk + 3: enough to see where the UTF-8 sequence at the cut ends.
    if (auto range = store_.read_range("runs/" + s.run_id + "/junit.xml", static_cast<std::uint64_t>(from),
                                       static_cast<std::size_t>(kChunk) + 3)) {
      if (!s.unloaded_counts) load_history(s);  // a predecessor's run: count what its journal holds
      const auto tests = s.unloaded_counts ? s.unloaded_counts->tests : s.results.size();
      const auto crashes = s.unloaded_counts ? s.unloaded_counts->crashes : s.crashes.size();
      return piece(range->bytes, static_cast<std::int64_t>(range->total), tests, crashes);
    }
  }
  load_history(s);
  const std::string* xml = nullptr;
  if (s.job.state == JobState::kDone) {
    if (!s.junit_cache)
      s.junit_cache = render_junit(s, s.job.ended_at);
    xml = &*s.junit_cache;
  } else {
    // A new text at offset 0 (or when there is none); the other pieces
    // from it. A client seeing another snapshot number mid-way (another
    // reader started over meanwhile) starts over too.
    if (from == 0 || !s.active_report) {
      s.active_report = render_junit(s, wall_now());
      ++s.active_report_snapshot;
    }
    snapshot = s.active_report_snapshot;
    xml = &*s.active_report;
  }
  const auto total = static_cast<std::int64_t>(xml->size());
  const std::string_view window =
      from <= total ? std::string_view(*xml).substr(static_cast<std::size_t>(from)) : std::string_view();
  return piece(window, total, s.results.size(), s.crashes.size());
}

uid_t JobService::owner_of(const std::string& run_id) const {
  auto it = jobs_.find(run_id);
  if (it == jobs_.end()) throw not_supervised(run_id);
  return it->second->owner;
}

json JobService::info(const std::string& id) {
  Supervised& s = known(id);
  if (!s.unloaded_counts) load_history(s);  // counts known: nothing to read back
  json j = s.job.to_json();
  j.erase("spec");
  // The plan's nodeid lists grow with the crashes (90 crashed tests with
  // 16 KB ids passed 1 MiB): the first kInfoNodeids of each, and each
  // list's length in "<name>_total" (job.json and deselect.txt keep them all).
  if (auto plan = j.find("plan"); plan != j.end() && plan->is_object()) {
    for (const char* list : {"excluded", "rerun_queue", "passed_on_rerun"}) {
      auto it = plan->find(list);
      if (it == plan->end() || !it->is_array()) continue;
      (*plan)[std::string(list) + "_total"] = it->size();
      if (it->size() > kInfoNodeids) it->erase(it->begin() + kInfoNodeids, it->end());
    }
  }
  j["argv"] = s.job.spec.argv;
  j["cwd"] = s.job.spec.cwd;
  j["run_id"] = s.run_id;
  j["tests"] = s.unloaded_counts ? s.unloaded_counts->tests : s.results.size();
  j["crashes"] = s.unloaded_counts ? s.unloaded_counts->crashes : s.crashes.size();
  j["log"] = output_path(s.run_id);
  // how much of its output the cap freed (0: the log is whole).
  if (const auto parts = log_parts(output_path(s.run_id))) {
    j["output_bytes"] = parts->size;
    j["output_dropped_bytes"] = parts->dropped();
  }
  if (s.job.spec.separate_stderr) {
    j["stderr_log"] = output_path(s.run_id, OutputStream::kStderr);
    if (const auto parts = log_parts(output_path(s.run_id, OutputStream::kStderr))) {
      j["stderr_bytes"] = parts->size;
      j["stderr_dropped_bytes"] = parts->dropped();
    }
  }
  return j;
}

void JobService::record_crash(Supervised* s, Crash crash) {
  // The run may be gone: retention or a prune removes a run once it ended
  // (its controller left), while a process of it lived on and died later.
  // A removed run has no crash records; kept, this one would be listed
  // forever with no run to prune it by (the attack: 1,000 of them).
  if (!s && !crash.run_id.empty() && !runs_.find(crash.run_id)) {
    spdlog::info("run {}: crash of pid {} not kept: the run was removed (retention or prune) before the process "
                 "ended",
                 crash.run_id, crash.pid);
    return;
  }
  // How many results the run had when the test crashed: a later pass of it
  // in the same attempt is a rerun (mark_flaky_crashes).
  const auto note_results_at_crash = [s](const Crash& c) {
    if (s && !c.nodeid.empty()) s->results_at_crash[c.nodeid] = s->results.size();
  };
  // A restarted lpd may hear again of a death the previous one recorded (a
  // shim replaying worker.down, a re-adopted attempt ending): one record,
  // one crash-log line, one event per crash.
  if (const Crash* same = crashes_.find_same(crash)) {
    note_results_at_crash(crash);
    spdlog::info("run {}: crash of pid {} already recorded (crash {})", crash.run_id, crash.pid, same->crash_id);
    return;
  }
  const std::size_t records_before = crashes_.size();
  const Crash& stored = crashes_.append(std::move(crash));
  // Past the owner's budget the store keeps one record saying so per run
  // and attempt; a crash after it adds nothing to say (CrashStore's log has it).
  if (crashes_.size() == records_before) return;
  note_results_at_crash(stored);
  spdlog::warn("run {}: crash {}: {}", stored.run_id, stored.crash_id, stored.reason);
  const json line = stored.to_json();
  if (s && !s->job.spec.crash_log_path.empty()) {
    std::string text = line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    if (auto error = write_file_as(s->job.spec.run_as, s->job.spec.crash_log_path, text, UserWrite::kAppend))
      report_error(*s, "crash log: " + error->message);
  }
  events_.publish("crash", line, stored.run_id, stored.owner);
  if (s) s->crashes.push_back(stored);
}

namespace {

/// Whether job.json's text, as lpd writes it (StateStore::write_json,
/// indent 2), says the job is done: a top-level `"state": "done"` sits on a
/// line of its own, which no string inside the job can fake (a newline in
/// a string is escaped). Another layout answers false and is parsed.
bool written_as_done(std::string_view job_json) { return job_json.find("\n  \"state\": \"done\"") != std::string_view::npos; }

}  // namespace

void JobService::restore() {
  std::size_t adopted = 0, ended = 0;
  for (const auto& run_id : store_.list_dirs("runs")) {
    if (!is_safe_id(run_id)) continue;
    auto text = read_untrusted_file(store_.path("runs/" + run_id + "/job.json"), StateStore::kMaxRecordBytes);
    if (!text) continue;
    auto s = std::make_unique<Supervised>();
    s->run_id = run_id;
    if (written_as_done(*text)) {
      // Parsing thousands of ended jobs (each with its environment) would
      // hold up the start; load_history() reads it when someone asks.
      s->job.state = JobState::kDone;
      s->job_loaded = false;
    } else {
      auto stored = json::parse(*text, nullptr, false);
      try {
        if (stored.is_discarded()) continue;
        s->job = Job::from_json(stored);
      } catch (const json::exception& e) {
        spdlog::error("run {}: job.json is not a job lpd wrote ({}); not restored", run_id, e.what());
        continue;
      }
    }
    if (Run* run = runs_.find(run_id)) s->owner = run->owner;
    // An ended run's results stay on disk until someone asks (run.report,
    // run.info): reading every journal of a long history is what made
    // lpd's start take minutes.
    s->history_loaded = false;
    Supervised& ref = *s;
    jobs_[run_id] = std::move(s);
    if (ref.job.state == JobState::kDone) {
      ++ended;
      output_cap_.known(run_id, ref.owner, output_path(run_id));  // counts towards its owner's total
      // Its spec is not read yet (a stand-in job): a stderr log counts if it is there.
      if (const std::string path = output_path(run_id, OutputStream::kStderr); ::access(path.c_str(), F_OK) == 0)
        output_cap_.known(run_id, ref.owner, path, OutputStream::kStderr);
      continue;
    }
    load_history(ref);
    output_cap_.started(run_id, ref.owner, output_path(run_id));  // cut what was written while lpd was away
    if (ref.job.spec.separate_stderr)
      output_cap_.started(run_id, ref.owner, output_path(run_id, OutputStream::kStderr), OutputStream::kStderr);
    ++adopted;
    if (const auto alive = check_liveness(ref.job.monitor_pid, ref.job.monitor_start_time);
        alive == Liveness::kAlive || alive == Liveness::kUnknown) {  // unknown: the watch retries until it can look
      ref.readopted_watch = ExitWatch::start(io_, ref.job.monitor_pid, ref.job.monitor_start_time,
                                             [this, run_id](const ExitStatus&) { attempt_ended(run_id); });
    } else {
      // It ended while lpd was down; its status file says how.
      boost::asio::post(io_, [this, run_id] { attempt_ended(run_id); });
    }
  }
  spdlog::info("re-adopted {} unfinished job(s); {} ended job(s) known", adopted, ended);
}

}  // namespace lpd::daemon
