#include "daemon/process/process_service.h"

#include <unistd.h>

#include <csignal>
#include <cstring>
#include <system_error>

#include <spdlog/spdlog.h>

#include "daemon/process/log_file.h"
#include "daemon/process/proc_stat.h"
#include "daemon/process/process_record_json.h"
#include "daemon/exit_watch.h"
#include "daemon/resource_shortage.h"
#include "daemon/storage_failure.h"

namespace lpd::daemon {
namespace {

using protocol::Error;
using protocol::ErrorCode;

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::chrono::milliseconds to_millis(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

std::string in_quotes(const std::string& text) { return "\"" + text + "\""; }

}  // namespace

std::optional<int> parse_signal(const std::string& text) {
  if (text.empty()) return std::nullopt;
  if (text.find_first_not_of("0123456789") == std::string::npos) {
    const int n = std::stoi(text.substr(0, 3));
    return n > 0 && n < NSIG ? std::optional<int>(n) : std::nullopt;
  }
  std::string name = text;
  for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  for (int signo = 1; signo < NSIG; ++signo) {
    const char* abbrev = ::sigabbrev_np(signo);
    if (abbrev && name == abbrev) return signo;
  }
  return std::nullopt;
}

ProcessService::ProcessService(boost::asio::io_context& io, const StateStore& store, EventBus& events,
                               ProcessLauncher& launcher)
    : io_(io), store_(store), events_(events), launcher_(launcher), registry_(check_liveness) {}

// Deliberately kills nothing: helpers outlive lpd and are re-adopted.
ProcessService::~ProcessService() = default;

// -- persistence and events ----------------------------------------------

void ProcessService::persist(const SupervisedProcess& record) const {
  try {
    store_.write_json("procs/" + record.name + ".json", process_to_json(record, wall_seconds()));
  } catch (const std::exception& e) {
    spdlog::error("cannot record process {}: {}", record.name, e.what());
  }
}

void ProcessService::publish(const std::string& type, const SupervisedProcess& record) {
  events_.publish(type, process_to_json(record, wall_seconds()), {}, record.owner);
}

nlohmann::json ProcessService::describe(const SupervisedProcess& record) const {
  return process_to_json(record, wall_seconds());
}

nlohmann::json ProcessService::ensure_result(const SupervisedProcess& r, bool reused) const {
  // On reuse the offset is the end of the log (a stat, not a read), so a
  // caller reading from it sees only what comes after this ensure.
  const std::uint64_t offset = reused ? file_size(r.log_path) : r.ready_offset;
  return {{"name", r.name},
          {"pid", r.pid},
          {"state", to_string(r.state)},
          {"reused", reused},
          {"log_path", r.log_path},
          {"offset", offset},
          {"ready_offset", r.ready_offset},
          {"ready_line", r.ready_line},
          {"started_at", r.started_at},
          {"ready_at", r.ready_at},
          {"startup_seconds", r.ready_at > r.started_at ? r.ready_at - r.started_at : 0.0}};
}

std::string ProcessService::last_lines_of(const std::string& name) const {
  auto it = supervision_.find(name);
  if (it == supervision_.end() || !it->second.pattern_wait) return {};
  return it->second.pattern_wait->last_lines();
}

StartFailure ProcessService::failure(ErrorCode code, const std::string& name, std::string what) const {
  // A helper's output goes straight to its log file; on a full disk its
  // writes fail in the helper, and its ready line never reaches lpd. Say
  // so, rather than blame a helper that may well have printed it.
  if (const auto full = space_shortage(store_.path("logs"))) {
    code = ErrorCode::kUnavailable;
    what = "the file system of lpd's state directory " + store_.root() + " is full (" + *full +
           "): the output of process " + name + " may not have reached its log " + store_.path("logs/" + name + ".log") +
           ", so lpd cannot tell what it printed; free some space and retry (" + what + ")";
  }
  const std::string lines = last_lines_of(name);
  if (lines.empty()) {
    what += "; its log is empty";
  } else {
    what += "; last log lines:\n" + lines;
  }
  return {code, std::move(what)};
}

// -- ensure ----------------------------------------------------------------

void ProcessService::ensure(EnsureRequest request, EnsureDone done) {
  const Pattern pattern = Pattern::compile(request.pattern);  // refused before anything else
  auto waiter = [done](const SupervisedProcess& record, const StartFailure* failure) {
    if (failure) {
      done(nullptr, false, failure);
    } else {
      done(&record, false, nullptr);
    }
  };
  const std::string name = request.name;
  switch (registry_.plan_ensure(name, request.restart)) {
    case EnsurePlan::kReuse:
      done(registry_.find(name), true, nullptr);
      return;
    case EnsurePlan::kJoin: {
      registry_.add_waiter(name, std::move(waiter));
      auto& sup = supervision(name);
      // After a --keep-on-timeout the start has no timer left; this caller
      // still deserves its own limit.
      if (!sup.timer) arm_timeout(name, sup.generation, request.timeout, true);
      return;
    }
    case EnsurePlan::kStopThenStart: {
      // Check now what would fail at the start, so the caller is not told
      // only after the old process was stopped.
      resolve_executable(request.argv.front(), request.env, request.cwd);
      registry_.add_waiter(name, std::move(waiter));
      auto& sup = supervision(name);
      if (!sup.pending_start) sup.pending_start = std::move(request);
      if (registry_.find(name)->state == ProcState::kReady) kill(name, SIGTERM, to_millis(kDefaultGraceSeconds), nullptr);
      return;
    }
    case EnsurePlan::kStart:
      start(request, pattern, std::move(waiter));
      return;
  }
}

void ProcessService::start(const EnsureRequest& request, const Pattern& pattern, ProcessRegistry::Waiter waiter) {
  const std::string& name = request.name;
  // Fail before touching the old log when the command cannot run at all.
  resolve_executable(request.argv.front(), request.env, request.cwd);
  const std::string log_path = store_.path("logs/" + name + ".log");
  int log_fd = -1;
  try {
    store_.make_dir("logs");
    rotate_log(log_path);
    std::optional<std::pair<uid_t, gid_t>> log_owner;
    if (request.credentials) log_owner.emplace(request.credentials->uid, request.credentials->gid);
    log_fd = open_log_for_append(log_path, log_owner);
  } catch (const StorageFailure&) {
    throw;  // unavailable, naming the directory and the cause
  } catch (const std::system_error& e) {
    if (StorageFailure::is_resource_errno(e.code().value()))
      throw StorageFailure(e.code().value(), store_.root(), "preparing the log logs/" + name + ".log");
    throw Error(ErrorCode::kInternal, std::string("cannot prepare the log: ") + e.what());
  }
  LaunchSpec spec;
  spec.argv = request.argv;
  spec.cwd = request.cwd;
  spec.env = request.env;
  spec.stdout_fd = log_fd;
  spec.stderr_fd = log_fd;
  spec.credentials = request.credentials;
  Launched launched;
  try {
    launched = launcher_.launch(spec);
  } catch (...) {
    ::close(log_fd);
    throw;
  }
  ::close(log_fd);

  SupervisedProcess record;
  record.name = name;
  record.owner = request.owner;
  record.pid = launched.pid;
  record.start_time = launched.start_time;
  record.started_at = wall_seconds();
  record.argv = request.argv;
  record.cwd = request.cwd;
  record.pattern = pattern.source();
  record.log_path = log_path;
  record.timeout = request.timeout;
  record.max_read_lines = request.max_read_lines;
  record.keep_on_timeout = request.keep_on_timeout;
  const std::uint64_t generation = registry_.begin(std::move(record));
  if (waiter) registry_.add_waiter(name, std::move(waiter));

  auto& sup = supervision(name);
  sup = Supervision{};
  sup.generation = generation;
  spdlog::info("process {} started: pid {} ({}), waiting for {}", name, launched.pid, launched.executable,
               in_quotes(pattern.source()));
  const auto* stored = registry_.find(name);
  persist(*stored);
  publish("process.starting", *stored);

  watch_exit(name, generation, launched.pidfd, true);
  watch_pattern(name, generation, 0);
  arm_timeout(name, generation, request.timeout, request.keep_on_timeout);
}

void ProcessService::start_pending(const std::string& name) {
  auto it = supervision_.find(name);
  if (it == supervision_.end() || !it->second.pending_start) return;
  const auto* record = registry_.find(name);
  if (record && is_running(record->state)) return;
  EnsureRequest request = std::move(*it->second.pending_start);
  it->second.pending_start.reset();
  try {
    start(request, Pattern::compile(request.pattern), nullptr);
  } catch (const Error& e) {
    registry_.fail_waiters(name, StartFailure{e.code(), e.what()});
  } catch (const std::exception& e) {
    registry_.fail_waiters(name, StartFailure{ErrorCode::kInternal, e.what()});
  }
}

void ProcessService::arm_timeout(const std::string& name, std::uint64_t generation, double seconds, bool keeps) {
  auto& sup = supervision(name);
  sup.timer = std::make_unique<boost::asio::steady_timer>(io_);
  sup.timer_keeps = keeps;
  sup.timer->expires_after(to_millis(seconds));
  sup.timer->async_wait([this, name, generation](boost::system::error_code ec) {
    if (!ec) on_timeout(name, generation);
  });
}

void ProcessService::watch_exit(const std::string& name, std::uint64_t generation, int pidfd, bool own_child) {
  auto watch = std::make_shared<PidfdWatch>(io_, pidfd, own_child);
  supervision(name).exit_watch = watch;
  watch->async_wait([this, name, generation](const ExitStatus& status) { on_exit(name, generation, status); });
}

void ProcessService::watch_exit_later(const std::string& name, std::uint64_t generation) {
  auto& sup = supervision(name);
  if (!sup.watch_retry) sup.watch_retry = std::make_unique<boost::asio::steady_timer>(io_);
  sup.watch_retry->expires_after(watch_retry_delay(++sup.watch_failures));
  sup.watch_retry->async_wait([this, name, generation](boost::system::error_code ec) {
    if (ec) return;
    const auto* record = registry_.find(name);
    auto it = supervision_.find(name);
    if (!record || it == supervision_.end() || it->second.generation != generation || !is_running(record->state))
      return;
    const PinnedProcess pinned = pin_process(record->pid, record->start_time);
    switch (pinned.liveness) {
      case Liveness::kAlive:
        spdlog::info("process {} (pid {}): watched again", name, record->pid);
        it->second.watch_failures = 0;
        watch_exit(name, generation, pinned.pidfd, false);
        return;
      case Liveness::kGone:
        on_exit(name, generation, ExitStatus{});  // not our child: its status is unknown
        return;
      case Liveness::kReused:
        mark_lost(name);
        return;
      case Liveness::kUnknown:
        watch_exit_later(name, generation);
        return;
    }
  });
}

void ProcessService::watch_pattern(const std::string& name, std::uint64_t generation, std::uint64_t offset) {
  const auto* record = registry_.find(name);
  PatternWait::Callbacks callbacks;
  callbacks.on_match = [this, name, generation](const std::string& line, std::uint64_t end) {
    on_match(name, generation, line, end);
  };
  callbacks.on_line_limit = [this, name, generation] { on_line_limit(name, generation); };
  try {
    supervision(name).pattern_wait = PatternWait::start(io_, record->log_path, offset, Pattern::compile(record->pattern),
                                                        record->max_read_lines, std::move(callbacks));
  } catch (const std::exception& e) {
    // Without its log the start can only end by exit or timeout.
    spdlog::error("cannot watch the log of process {}: {}", name, e.what());
  }
}

// -- what happens to a starting process ------------------------------------

void ProcessService::end_startup(Supervision& sup) {
  if (sup.pattern_wait) sup.pattern_wait->stop();
  if (sup.timer) sup.timer->cancel();
  sup.timer.reset();
}

void ProcessService::on_match(const std::string& name, std::uint64_t generation, const std::string& line,
                              std::uint64_t offset) {
  auto* record = registry_.mutable_record(name);
  if (!record || record->generation != generation || record->state != ProcState::kStarting) return;
  record->ready_offset = offset;
  record->ready_line = line;
  record->ready_at = wall_seconds();
  record->failure.clear();
  // Answering first: waiters are what this whole path is timed by.
  const auto step = registry_.fire(name, generation, ProcEvent::kMatched);
  if (!step) return;
  auto& sup = supervision(name);
  end_startup(sup);
  sup.pattern_wait.reset();  // ready: the log is not read any more
  const auto* stored = registry_.find(name);
  spdlog::info("process {} ready (pid {}) after {:.3f}s", name, stored->pid, stored->ready_at - stored->started_at);
  persist(*stored);
  publish("process.ready", *stored);
}

void ProcessService::on_line_limit(const std::string& name, std::uint64_t generation) {
  const auto* record = registry_.find(name);
  if (!record || record->generation != generation) return;
  const auto why = failure(ErrorCode::kUnavailable, name,
                           "none of the first " + std::to_string(record->max_read_lines) + " lines of process " +
                               name + " (pid " + std::to_string(record->pid) + ") matched " +
                               in_quotes(record->pattern) + "; it is being killed");
  registry_.mutable_record(name)->failure = "no match within --max-read-lines " + std::to_string(record->max_read_lines);
  const auto step = registry_.fire(name, generation, ProcEvent::kLineLimit, &why);
  if (!step) return;
  end_startup(supervision(name));
  begin_kill(name, SIGTERM, to_millis(kDefaultGraceSeconds));
  persist(*registry_.find(name));
}

void ProcessService::on_timeout(const std::string& name, std::uint64_t generation) {
  const auto* record = registry_.find(name);
  if (!record || record->generation != generation) return;
  auto& sup = supervision(name);
  const bool keep = sup.timer_keeps;
  sup.timer.reset();
  const auto why = failure(ErrorCode::kTimeout, name,
                           "process " + name + " (pid " + std::to_string(record->pid) + ") printed no line matching " +
                               in_quotes(record->pattern) + " within " + fmt::format("{:g}", record->timeout) + " s; " +
                               (keep ? "it is left running (--keep-on-timeout)" : "it is being killed"));
  const auto step = registry_.fire(name, generation, keep ? ProcEvent::kTimedOutKept : ProcEvent::kTimedOut, &why);
  if (!step) return;
  registry_.mutable_record(name)->failure = "timed out waiting for its pattern";
  if (step->action == ProcAction::kFailStartAndKill) {
    end_startup(sup);
    begin_kill(name, SIGTERM, to_millis(kDefaultGraceSeconds));
  }
  persist(*registry_.find(name));
}

void ProcessService::on_exit(const std::string& name, std::uint64_t generation, const ExitStatus& status) {
  auto it = supervision_.find(name);
  if (it == supervision_.end() || it->second.generation != generation) return;
  auto wait = it->second.pattern_wait;
  const auto* record = registry_.find(name);
  if (wait && record && record->state == ProcState::kStarting) {
    // Read what it wrote before dying: it may have printed the ready line
    // (then it was ready, briefly), and its last words go in the error.
    wait->finish([this, name, generation, status] { after_exit(name, generation, status); });
    return;
  }
  after_exit(name, generation, status);
}

void ProcessService::after_exit(const std::string& name, std::uint64_t generation, const ExitStatus& status) {
  auto* record = registry_.mutable_record(name);
  if (!record || record->generation != generation) return;
  const ProcState before = record->state;
  const auto why = failure(ErrorCode::kUnavailable, name,
                           "process " + name + " (pid " + std::to_string(record->pid) + ") exited with " +
                               status.describe() + " before a line matched " + in_quotes(record->pattern));
  record->exit = status;
  record->ended_at = wall_seconds();
  if (before == ProcState::kStarting) record->failure = "exited before its pattern matched";
  const auto step = registry_.fire(name, generation, ProcEvent::kExited, &why);
  if (!step) return;
  auto& sup = supervision(name);
  end_startup(sup);
  sup.pattern_wait.reset();
  sup.exit_watch.reset();
  const auto* stored = registry_.find(name);
  spdlog::info("process {} (pid {}) {}: {}", name, stored->pid, to_string(stored->state), status.describe());
  persist(*stored);
  publish(stored->state == ProcState::kKilled ? "process.killed" : "process.exited", *stored);
  end_followers(name);
  finish_kill_if_done(name);
  start_pending(name);
}

// -- kill ------------------------------------------------------------------

void ProcessService::mark_lost(const std::string& name) {
  auto* record = registry_.mutable_record(name);
  if (!record) return;
  auto& sup = supervision(name);
  end_startup(sup);
  if (sup.exit_watch) sup.exit_watch->cancel();
  sup = Supervision{};
  sup.generation = record->generation;
  record->state = ProcState::kLost;
  record->ended_at = wall_seconds();
  spdlog::warn("process {}: pid {} now belongs to another program; marked lost and left alone", name, record->pid);
  // Anyone still waiting for its start or a restart will not get it.
  registry_.fail_waiters(name, StartFailure{ErrorCode::kConflict, "process " + name + " was lost (its pid was reused)"});
  persist(*record);
  publish("process.lost", *record);
  end_followers(name);
}

void ProcessService::kill(const std::string& name, int signo, std::chrono::milliseconds grace, KillDone done) {
  const auto* record = registry_.find(name);
  if (!record) throw Error(ErrorCode::kNotFound, "no process named " + in_quotes(name));
  auto not_running = [this, &name, &done] {
    if (!done) return;
    nlohmann::json result = describe(*registry_.find(name));
    result["was_running"] = false;
    done(result);
  };
  if (!is_running(record->state)) {
    not_running();
    return;
  }
  if (check_liveness(record->pid, record->start_time) == Liveness::kReused) {
    mark_lost(name);
    not_running();
    return;
  }
  auto& sup = supervision(name);
  if (done) sup.kill_waiters.push_back(std::move(done));
  const auto why = failure(ErrorCode::kConflict, name, "process " + name + " was killed while it was starting");
  const auto step = registry_.fire(name, record->generation, ProcEvent::kKillRequested, &why);
  if (!step) return;
  if (step->action == ProcAction::kNone) {
    // A kill is already under way; a different signal is still delivered.
    if (sup.kill_job && signo != sup.kill_signal) sup.kill_job->resignal(signo);
    return;
  }
  end_startup(sup);
  begin_kill(name, signo, grace);
  persist(*registry_.find(name));
}

void ProcessService::begin_kill(const std::string& name, int signo, std::chrono::milliseconds grace) {
  const auto* record = registry_.find(name);
  auto& sup = supervision(name);
  sup.kill_done = false;
  sup.kill_forced = false;
  sup.kill_signal = signo;
  spdlog::info("killing process {} (pid {}) and its process group with signal {}", name, record->pid, signo);
  sup.kill_job = std::make_shared<KillJob>(io_, record->pid, signo, grace);
  const std::uint64_t generation = record->generation;
  sup.kill_job->start([this, name, generation](const KillJob::Result& result) {
    auto it = supervision_.find(name);
    if (it == supervision_.end() || it->second.generation != generation) return;
    it->second.kill_done = true;
    it->second.kill_forced = result.forced;
    finish_kill_if_done(name);
  });
}

void ProcessService::finish_kill_if_done(const std::string& name) {
  auto it = supervision_.find(name);
  if (it == supervision_.end()) return;
  auto& sup = it->second;
  const auto* record = registry_.find(name);
  // Both the whole group gone and the leader's end recorded, so the reply
  // and `ps` agree.
  if (!record || !sup.kill_done || is_running(record->state)) return;
  auto waiters = std::move(sup.kill_waiters);
  sup.kill_waiters.clear();
  nlohmann::json result = describe(*record);
  result["was_running"] = true;
  result["forced"] = sup.kill_forced;
  result["signal"] = sup.kill_signal;
  for (auto& waiter : waiters) waiter(result);
}

// -- logs ------------------------------------------------------------------

nlohmann::json ProcessService::stream_logs(const std::string& name, std::optional<std::uint64_t> lines, bool follow,
                                           std::uint64_t session, std::weak_ptr<ReplySink> sink,
                                           ReplySink::StreamSlot slot) {
  const auto* record = registry_.find(name);
  if (!record) throw Error(ErrorCode::kNotFound, "no process named " + in_quotes(name));
  const std::string path = record->log_path;
  const std::uint64_t size = file_size(path);
  std::uint64_t start = lines ? offset_of_last_lines(path, *lines, size) : 0;
  std::uint64_t skipped = 0;
  if (size - start > kMaxLogReplyBytes) {
    skipped = size - kMaxLogReplyBytes - start;
    start = size - kMaxLogReplyBytes;
  }
  auto end_data = [this, name] {
    const auto* r = registry_.find(name);
    if (!r) return nlohmann::json::object();
    const auto full = describe(*r);
    return nlohmann::json{{"state", full["state"]}, {"exit_status", full["exit_status"]}};
  };
  std::shared_ptr<LogStream> stream;
  try {
    stream = LogStream::open(io_, name, path, start, std::move(sink), end_data);
  } catch (const std::system_error& e) {
    throw Error(ErrorCode::kNotFound, std::string("the log of process ") + name + " cannot be read: " + e.what());
  }
  stream->hold(std::move(slot));
  const bool following = follow && is_running(record->state);
  if (following) {
    stream->follow();
    followers_.emplace(name, Follower{session, stream});
  } else {
    stream->read_until(size);
  }
  return {{"name", name},     {"log_path", path},           {"offset", start},
          {"size", size},     {"skipped_bytes", skipped},   {"following", following},
          {"state", to_string(record->state)}};
}

void ProcessService::end_followers(const std::string& name) {
  auto [first, last] = followers_.equal_range(name);
  for (auto it = first; it != last; ++it) it->second.stream->end();
  followers_.erase(first, last);
}

void ProcessService::drop_session(std::uint64_t session) {
  for (auto it = followers_.begin(); it != followers_.end();) {
    if (it->second.session == session) {
      it->second.stream->cancel();
      it = followers_.erase(it);
    } else {
      ++it;
    }
  }
}

// -- restore ---------------------------------------------------------------

void ProcessService::restore() {
  for (const auto& file : store_.list("procs")) {
    if (file.size() <= 5 || file.substr(file.size() - 5) != ".json") continue;
    const auto value = store_.read_json("procs/" + file);
    auto record = value ? process_from_json(*value) : std::nullopt;
    if (!record || record->name + ".json" != file) {
      spdlog::warn("ignoring unreadable process record {}", store_.path("procs/" + file));
      continue;
    }
    const std::string name = record->name;
    if (!is_running(record->state)) {
      registry_.restore(std::move(*record));
      continue;
    }
    // The pidfd pins the pid, then /proc says whether it is still the same
    // process. Only the kernel's "no such process" or another start time
    // ends it; a failure to look (EMFILE...) re-adopts it all the same.
    const PinnedProcess pinned = pin_process(record->pid, record->start_time);
    const Liveness liveness = pinned.liveness;
    const ProcState was = record->state;
    if (liveness == Liveness::kGone || liveness == Liveness::kReused) {
      record->state = liveness == Liveness::kReused ? ProcState::kLost : ProcState::kExited;
      record->exit = ExitStatus{};  // not our child any more: unknown
      record->ended_at = wall_seconds();
      registry_.restore(std::move(*record));
      const auto* stored = registry_.find(name);
      if (stored->state == ProcState::kLost) {
        spdlog::warn("process {}: pid {} now belongs to another program; marked lost and left alone", name,
                     stored->pid);
      } else {
        spdlog::info("process {} (pid {}) ended while lpd was down", name, stored->pid);
      }
      persist(*stored);
      publish(stored->state == ProcState::kLost ? "process.lost" : "process.exited", *stored);
      continue;
    }
    record->adopted = true;
    // A kill in progress died with the old lpd, and its requester with it.
    if (was == ProcState::kStopping) record->state = ProcState::kReady;
    registry_.restore(std::move(*record));
    const auto* stored = registry_.find(name);
    auto& sup = supervision(name);
    sup = Supervision{};
    sup.generation = stored->generation;
    if (liveness == Liveness::kAlive) {
      watch_exit(name, stored->generation, pinned.pidfd, false);
    } else {
      spdlog::warn("process {} (pid {}): cannot tell whether it still runs ({}); re-adopted, watching it once lpd can",
                   name, stored->pid, describe_shortage(pinned.error));
      watch_exit_later(name, stored->generation);
    }
    // Still starting: watch its log again from the start; nobody waits,
    // so there is no timeout.
    if (stored->state == ProcState::kStarting) watch_pattern(name, stored->generation, 0);
    spdlog::info("re-adopted process {} (pid {}, {})", name, stored->pid, to_string(stored->state));
    persist(*stored);
  }
}

}  // namespace lpd::daemon
