#include "daemon/processes/process_service.h"

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <set>
#include <system_error>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "daemon/os/cgroup.h"
#include "daemon/os/descendants.h"
#include "daemon/logs/log_file.h"
#include "daemon/logs/log_cap.h"
#include "daemon/os/proc_stat.h"
#include "daemon/processes/process_record_json.h"
#include "daemon/os/exit_watch.h"
#include "daemon/os/pidfd_watch.h"
#include "daemon/core/resource_shortage.h"
#include "daemon/core/storage_failure.h"

/// Log lines name a helper by its full name ("<scope>::<name>").
template <>
struct fmt::formatter<lpd::daemon::ProcessKey> : fmt::formatter<std::string> {
  auto format(const lpd::daemon::ProcessKey& key, format_context& ctx) const {
    return fmt::formatter<std::string>::format(key.full_name(), ctx);
  }
};

namespace lpd::daemon {
namespace {

/// procs/STEM.json: one file per (owner, scope, name).
std::string record_file(const ProcessKey& key) { return "procs/" + process_file_stem(key) + ".json"; }

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

ProcessService::ProcessService(boost::asio::io_context& io, const StateStore& store, EventBus& events,
                               ProcessLauncher& launcher, HelperLogLimits log_limits)
    : io_(io),
      store_(store),
      events_(events),
      launcher_(launcher),
      registry_(check_liveness),
      log_limits_(log_limits),
      log_watch_(std::make_unique<HelperLogWatch>(io, kLogCapWindow, [this](uid_t owner) { enforce_log_caps(owner); })) {}

// Deliberately kills nothing: helpers outlive lpd and are re-adopted.
ProcessService::~ProcessService() = default;

// -- persistence and events ----------------------------------------------

void ProcessService::persist(const SupervisedProcess& record) const {
  try {
    store_.write_json(record_file(record.key()), process_to_json(record, wall_seconds()));
  } catch (const std::exception& e) {
    spdlog::error("cannot record process {}: {}", record.key(), e.what());
  }
}

void ProcessService::publish(const std::string& type, const SupervisedProcess& record) {
  events_.publish(type, process_to_json(record, wall_seconds()), {}, record.owner);
}

nlohmann::json ProcessService::describe(const SupervisedProcess& record) const {
  nlohmann::json out = process_to_json(record, wall_seconds());
  out["holders"] = is_running(record.state) ? leases_.holders(record.key(), record.generation) : 0;
  out["tree_running"] = tree_runs(record);
  return out;
}

// a record whose leader exited but whose tree runs on.
bool ProcessService::tree_runs(const SupervisedProcess& record) const {
  if (is_running(record.state)) return true;
  // left_running is listed at the leader's exit (and at restore); a tree
  // empty then cannot fill again: nothing of it is left to fork.
  if (record.cgroup_dir.empty() || record.left_running.empty()) return false;
  int error = 0;
  const auto members = cgroup_members(record.cgroup_dir, &error);
  return !members.empty() || (error != 0 && error != ENOENT);
}

nlohmann::json ProcessService::ensure_result(const SupervisedProcess& r, const EnsureAnswer& answer) const {
  // On reuse the offset is the end of the log (a stat, not a read), so a
  // caller reading from it sees only what comes after this ensure.
  const bool reused = answer.outcome == EnsureOutcome::kReused;
  const std::uint64_t offset = reused ? file_size(r.log_path) : r.ready_offset;
  // `outcome` and `differs` say what this call did and how the
  // helper it got differs from what it asked; `pattern` null: it was
  // ready once spawned (nothing was waited for).
  nlohmann::json out = {{"name", r.name},
          {"outcome", to_string(answer.outcome)},
          {"differs", answer.differs},
          {"pattern", r.pattern.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.pattern)},
          {"scope", r.scope},
          {"full_name", r.key().full_name()},
          {"pid", r.pid},
          {"state", to_string(r.state)},
          {"reused", reused},
          {"log_path", r.log_path},
          {"logs", r.logs},
          {"leased", r.leased},
          {"holders", leases_.holders(r.key(), r.generation)},
          {"offset", offset},
          {"ready_offset", r.ready_offset},
          {"ready_line", r.ready_line},
          {"started_at", r.started_at},
          {"ready_at", r.ready_at},
          {"startup_seconds", r.ready_at > r.started_at ? r.ready_at - r.started_at : 0.0}};
  // a helper whose start failed but which was left running is
  // handed back (as pytest-xprocess does), saying it never became ready.
  out["ready"] = r.state == ProcessState::kReady;
  if (r.state == ProcessState::kStarting && !r.failure.empty())
    out["not_ready"] = "it runs but never became ready: it printed no line matching " + in_quotes(r.pattern) + " (" +
                       r.failure + ")";
  return out;
}

// read from the log itself (the end of the file, bounded), so a
// helper without a pattern, or one whose last line has no newline yet, is
// never said to have an empty log.
std::optional<std::string> ProcessService::last_lines_of(const ProcessKey& key) const {
  const auto* record = registry_.find(key);
  if (!record || record->log_path.empty()) return std::nullopt;
  return last_log_lines(record->log_path, kFailureLogLines, kFailureLogBytes);
}

StartFailure ProcessService::failure(ErrorCode code, const ProcessKey& key, std::string what,
                                     const std::string& fate) const {
  // A helper's output goes straight to its log file; on a full disk its
  // writes fail in the helper, and its ready line never reaches lpd. Say
  // so, rather than blame a helper that may well have printed it.
  if (const auto full = space_shortage(store_.path("logs"))) {
    code = ErrorCode::kUnavailable;
    const auto* record = registry_.find(key);
    what = "cannot write lpd's state directory " + store_.root() + ": " + full->describe() +
           "; the output of process " + key.name + " may not have reached its log " +
           (record ? record->log_path : store_.path("logs")) + ", so lpd cannot tell what it printed; " +
           (fate.empty() ? what : fate) + "; free some space and retry";
  } else if (!fate.empty()) {
    what += "; " + fate;
  }
  const auto lines = last_lines_of(key);
  if (!lines) {
    what += "; its log cannot be read";
  } else if (lines->empty()) {
    what += "; its log is empty";
  } else {
    what += "; last log lines:\n" + *lines;
  }
  return {code, std::move(what)};
}

void ProcessService::persist_start(const ProcessKey& key, std::uint64_t generation) {
  try {
    store_.write_json(record_file(key), process_to_json(*registry_.find(key), wall_seconds()));
    return;
  } catch (const StorageFailure& e) {
    // Unrecorded, a helper would outlive a restart unknown to lpd (never
    // re-adopted, never killed): stop it now, and the caller hears why.
    spdlog::error("process {}: {}; killing it", key, e.what());
    const StartFailure why{e.is_resource_shortage() ? ErrorCode::kUnavailable : ErrorCode::kInternal, e.what()};
    const auto step = registry_.fire(key, generation, ProcessEvent::kKillRequested, &why);
    if (!step) return;
    auto& sup = supervision(key);
    end_startup(sup);
    registry_.mutable_record(key)->failure = "its record could not be written";
    begin_kill(key, SIGKILL, std::chrono::milliseconds(0));
  }
}

// -- ensure ----------------------------------------------------------------

// the reuse path (the common one: every test of a session
// asks for the helper) does only what a reuse needs: no as-user check,
// no pattern compile when it is the running helper's, no scan of every
// record; liveness (a poll of the exit watch's pidfd, else /proc/PID/stat)
// and the owner's key (the dispatcher's gate) are still checked.
void ProcessService::ensure(EnsureRequest request, EnsureDone done, const std::function<void(const EnsureRequest&)>& check_start) {
  const ProcessKey key = request.key();
  // Two scopes of one owner share files only through a hash collision;
  // a key already known was checked when it was first made (or restored
  // under its own file name).
  if (!registry_.find(key)) {
    const std::string stem = process_file_stem(key);
    for (const auto* other : registry_.all())
      if (other->key() != key && process_file_stem(other->key()) == stem)
        throw Error(ErrorCode::kConflict, "process " + key.full_name() + " would share its files (" + stem +
                                              ") with " + other->key().full_name() + "; use another name");
  }
  if (request.lease) {
    // The caller holds it from now on (waiting counts); its answer settles
    // the hold, and a helper nobody holds any more is stopped.
    const std::uint64_t session = request.session;
    leases_.wait(key, session);
    if (auto it = supervision_.find(key); it != supervision_.end() && it->second.linger_timer) {
      it->second.linger_timer->cancel();
      it->second.linger_timer.reset();
    }
    done = [this, key, session, done = std::move(done)](const SupervisedProcess* ready, const EnsureAnswer& answer,
                                                        const StartFailure* failure) {
      leases_.settle(key, session, ready ? ready->generation : 0, ready != nullptr);
      done(ready, answer, failure);
      if (ready) publish_holders(key);
      stop_if_unheld(key);
    };
    try {
      plan_and_run(std::move(request), done, check_start);
    } catch (...) {
      leases_.settle(key, session, 0, false);
      stop_if_unheld(key);
      throw;
    }
    return;
  }
  plan_and_run(std::move(request), std::move(done), check_start);
}

void ProcessService::plan_and_run(EnsureRequest request, EnsureDone done, const std::function<void(const EnsureRequest&)>& check_start) {
  const ProcessKey key = request.key();
  const auto* record = registry_.find(key);
  const EnsurePlan plan = ready_and_watched(key) && !request.restart ? EnsurePlan::kReuse
                                                                     : registry_.plan_ensure(key, request.restart);
  const bool runs_nothing = plan == EnsurePlan::kReuse || plan == EnsurePlan::kJoin;
  // A bad regex is refused whatever happens next; the running helper's own
  // pattern compiled when it started. No pattern: ready once spawned.
  std::optional<Pattern> pattern;
  if (!request.pattern.empty() && !(runs_nothing && record && record->pattern == request.pattern))
    pattern = Pattern::compile(request.pattern);
  if (!runs_nothing && request.only_if_running) {
    // Not started: the caller asks again with what a start needs.
    done(nullptr, EnsureAnswer{EnsureOutcome::kNotRunning, {}}, nullptr);
    return;
  }
  if (!runs_nothing && check_start) check_start(request);
  auto answered = [done](EnsureAnswer answer) {
    return [done, answer = std::move(answer)](const SupervisedProcess& ready, const StartFailure* failure) {
      if (failure) {
        done(nullptr, answer, failure);
      } else {
        done(&ready, answer, nullptr);
      }
    };
  };
  auto differences = [&request](const SupervisedProcess& running) {
    return ensure_differences({running.argv, running.pattern, running.cwd},
                              {request.argv, request.pattern, request.cwd});
  };
  switch (plan) {
    case EnsurePlan::kReuse:
      done(record, EnsureAnswer{EnsureOutcome::kReused, differences(*record)}, nullptr);
      return;
    case EnsurePlan::kJoin: {
      auto& sup = supervision(key);
      // its start already failed (timeout, line limit, a pattern
      // too complex) and it was left running: pytest-xprocess hands such
      // a process back on the next ensure (it runs), so this is a reuse,
      // answered now, with `ready` false and the reason; not a new wait.
      if (!sup.timer && !record->failure.empty()) {
        done(record, EnsureAnswer{EnsureOutcome::kReused, differences(*record)}, nullptr);
        return;
      }
      registry_.add_waiter(key, answered({EnsureOutcome::kJoined, differences(*record)}));
      // After a --keep-on-timeout the start has no timer left; this caller
      // still deserves its own limit.
      if (!sup.timer) arm_timeout(key, sup.generation, request.timeout, true);
      return;
    }
    case EnsurePlan::kStopThenStart: {
      // Check now what would fail at the start, so the caller is not told
      // only after the old process was stopped.
      resolve_executable(request.argv.front(), request.env, request.cwd);
      auto& sup = supervision(key);
      if (sup.pending_start) {
        // Another restart is already waiting: this one gets that start.
        registry_.add_waiter(key, answered({EnsureOutcome::kJoined,
                                            ensure_differences({sup.pending_start->argv, sup.pending_start->pattern,
                                                                sup.pending_start->cwd},
                                                               {request.argv, request.pattern, request.cwd})}));
      } else {
        registry_.add_waiter(key, answered({EnsureOutcome::kStarted, {}}));
        sup.pending_start = std::move(request);
      }
      if (registry_.find(key)->state == ProcessState::kReady) kill(key, SIGTERM, to_millis(kDefaultGraceSeconds), nullptr);
      return;
    }
    case EnsurePlan::kStart:
      start(request, pattern, answered({EnsureOutcome::kStarted, {}}));
      return;
  }
}

UniqueFd ProcessService::open_start_log(const EnsureRequest& request, SupervisedProcess& record) {
  const ProcessKey key = request.key();
  const std::string stem = process_file_stem(key);
  const auto* previous = registry_.find(key);
  std::uint64_t number = previous ? previous->start_number : 0;
  std::vector<std::string> kept = previous ? previous->logs : std::vector<std::string>{};
  std::optional<std::pair<uid_t, gid_t>> log_owner;
  if (request.credentials) log_owner.emplace(request.credentials->uid, request.credentials->gid);
  UniqueFd log_fd;
  std::string log_path;
  // A name already taken (a record lost with its logs kept) is skipped,
  // never appended to: its old ready line would match at once.
  for (int tries = 0; !log_fd; ++tries) {
    if (tries == 1000) throw std::system_error(EEXIST, std::generic_category(), "no free log name for " + stem);
    log_path = store_.path(process_log_name(stem, ++number));
    log_fd.reset(create_log(log_path, log_owner));
  }
  const LogRotation rotation = rotate_logs(kept, log_path, request.keep_logs);
  const std::string logs_dir = store_.path("logs");
  for (const auto& old : rotation.removed) {
    // Only this helper's own logs/STEM.N.log, whatever a state file said;
    // logs from before per-start logs are left where they are.
    if (is_log_of(old, logs_dir, stem) && ::unlink(old.c_str()) != 0 && errno != ENOENT)
      spdlog::warn("process {}: cannot remove its old log {}: {}", key, old, std::strerror(errno));
  }
  record.start_number = number;
  record.log_path = log_path;
  record.logs = rotation.kept;
  record.keep_logs = request.keep_logs;
  return log_fd;
}

void ProcessService::start(const EnsureRequest& request, const std::optional<Pattern>& pattern,
                           ProcessRegistry::Waiter waiter) {
  const ProcessKey key = request.key();
  // Fail before touching the old logs when the command cannot run at all.
  resolve_executable(request.argv.front(), request.env, request.cwd);
  if (!registry_.find(key)) make_room_for(key);  // a new record of its owner's
  if (const auto* previous = registry_.find(key); previous && !previous->cgroup_dir.empty()) {
    // Its leader exited but its server did not (a daemonizing helper): a
    // second one would run beside it, unseen; the user decides.
    const auto left = left_running_in(previous->cgroup_dir);
    if (!left.empty())
      throw Error(ErrorCode::kConflict, "process " + key.name + " exited, but " + std::to_string(left.size()) +
                                            " process(es) its last start left running still run (" +
                                            describe_left(left) + "): `lpctl kill " + key.name +
                                            "` stops them");
  }
  SupervisedProcess record;
  UniqueFd log_fd;
  try {
    store_.make_dir("logs");
    // The helper writes its output, ready line included, straight to its
    // log: on a full disk that line could never arrive, and the start
    // would end in a timeout blaming the helper. Refuse before anything
    // runs, is rotated or is recorded.
    if (const auto full = space_shortage(store_.path("logs")))
      throw StorageFailure(full->error, store_.root(),
                           "starting process " + key.name + ": its log would not fit, " + full->detail);
    log_fd = open_start_log(request, record);
  } catch (const StorageFailure&) {
    throw;  // unavailable, naming the directory and the cause
  } catch (const std::system_error& e) {
    if (StorageFailure::is_resource_errno(e.code().value()))
      throw StorageFailure(e.code().value(), store_.root(), "preparing the log of process " + key.name);
    throw Error(ErrorCode::kInternal, std::string("cannot prepare the log: ") + e.what());
  }
  LaunchSpec spec;
  spec.argv = request.argv;
  spec.cwd = request.cwd;
  spec.env = request.env;
  spec.stdout_fd = log_fd.get();
  spec.stderr_fd = log_fd.get();
  spec.credentials = request.credentials;
  Launched launched;
  try {
    launched = launcher_.launch(spec);
  } catch (...) {
    log_fd.reset();
    ::unlink(record.log_path.c_str());  // no start, no log: it would belong to no record
    throw;
  }
  log_fd.reset();

  record.name = key.name;
  record.scope = key.scope;
  record.owner = request.owner;
  record.pid = launched.pid;
  record.start_time = launched.start_time;
  record.started_at = wall_seconds();
  record.argv = request.argv;
  record.cwd = request.cwd;
  record.pattern = pattern ? pattern->source() : std::string();
  record.timeout = request.timeout;
  record.max_read_lines = request.max_read_lines;
  record.keep_on_timeout = request.keep_on_timeout;
  record.leased = request.lease;
  record.linger = request.linger;
  record.cgroup_dir = launched.cgroup_dir;
  const std::uint64_t generation = registry_.begin(std::move(record));
  if (waiter) registry_.add_waiter(key, std::move(waiter));

  auto& sup = supervision(key);
  sup = Supervision{};
  sup.generation = generation;
  spdlog::info("process {} started: pid {} ({}), waiting for {}", key, launched.pid, launched.executable,
               pattern ? in_quotes(pattern->source()) : std::string("nothing (no pattern)"));
  watch_exit(key, generation, launched.pidfd, true);
  persist_start(key, generation);
  const auto* stored = registry_.find(key);
  // its log counts from now on; its owner's kept logs may have
  // to give way (from the loop: not on the start's own path).
  if (is_running(stored->state)) watch_log(*stored);
  request_log_caps(stored->owner);
  publish("process.starting", *stored);
  if (stored->state != ProcessState::kStarting) return;  // its record could not be written: being killed
  if (!pattern) {
    // pytest-xprocess 1.0 allows a starter with no pattern: ready once
    // spawned. Answered from the loop, and only if it has not
    // already exited by then (a helper that dies at once is not called
    // ready: its exit, with its status, is the answer).
    boost::asio::post(io_, [this, key, generation] { ready_unless_exited(key, generation); });
    return;
  }
  watch_pattern(key, generation, 0);
  arm_timeout(key, generation, request.timeout, request.keep_on_timeout);
}

bool ProcessService::ready_and_watched(const ProcessKey& key) const {
  const auto* record = registry_.find(key);
  if (!record || record->state != ProcessState::kReady) return false;
  const auto it = supervision_.find(key);
  if (it == supervision_.end() || it->second.generation != record->generation || !it->second.exit_watch) return false;
  // The watch's pidfd stands for exactly this process (lpd's child, or
  // pinned with its start time when re-adopted): not readable means it has
  // not exited, and its pid cannot have passed to another program. One
  // poll instead of opening /proc/PID/stat; readable, plan_ensure decides.
  return !process_has_ended(it->second.exit_watch->pidfd());
}

void ProcessService::ready_unless_exited(const ProcessKey& key, std::uint64_t generation) {
  auto it = supervision_.find(key);
  if (it == supervision_.end() || it->second.generation != generation || !it->second.exit_watch) return;
  // Ended: the exit watch answers with its status.
  if (process_has_ended(it->second.exit_watch->pidfd())) return;
  on_match(key, generation, std::string(), 0);
}

void ProcessService::start_pending(const ProcessKey& key) {
  auto it = supervision_.find(key);
  if (it == supervision_.end() || !it->second.pending_start) return;
  const auto* record = registry_.find(key);
  if (record && is_running(record->state)) return;
  EnsureRequest request = std::move(*it->second.pending_start);
  it->second.pending_start.reset();
  try {
    std::optional<Pattern> pattern;
    if (!request.pattern.empty()) pattern = Pattern::compile(request.pattern);
    start(request, pattern, nullptr);
  } catch (const Error& e) {
    registry_.fail_waiters(key, StartFailure{e.code(), e.what()});
  } catch (const StorageFailure& e) {
    registry_.fail_waiters(key, StartFailure{e.is_resource_shortage() ? ErrorCode::kUnavailable : ErrorCode::kInternal,
                                              e.what()});
  } catch (const std::exception& e) {
    registry_.fail_waiters(key, StartFailure{ErrorCode::kInternal, e.what()});
  }
}

void ProcessService::arm_timeout(const ProcessKey& key, std::uint64_t generation, double seconds, bool keeps) {
  auto& sup = supervision(key);
  sup.timer = std::make_unique<boost::asio::steady_timer>(io_);
  sup.timer_keeps = keeps;
  sup.timer->expires_after(to_millis(seconds));
  sup.timer->async_wait([this, key, generation](boost::system::error_code ec) {
    if (!ec) on_timeout(key, generation);
  });
}

void ProcessService::watch_exit(const ProcessKey& key, std::uint64_t generation, int pidfd, bool own_child) {
  auto on_end = [this, key, generation](const ExitStatus& status) { on_exit(key, generation, status); };
  supervision(key).exit_watch =
      own_child ? ExitWatch::child(io_, pidfd, std::move(on_end)) : ExitWatch::adopt(io_, pidfd, std::move(on_end));
}

void ProcessService::watch_exit_later(const ProcessKey& key, std::uint64_t generation) {
  auto& sup = supervision(key);
  if (!sup.watch_retry) sup.watch_retry = std::make_unique<boost::asio::steady_timer>(io_);
  sup.watch_retry->expires_after(watch_retry_delay(++sup.watch_failures));
  sup.watch_retry->async_wait([this, key, generation](boost::system::error_code ec) {
    if (ec) return;
    const auto* record = registry_.find(key);
    auto it = supervision_.find(key);
    if (!record || it == supervision_.end() || it->second.generation != generation || !is_running(record->state))
      return;
    PinnedProcess pinned = pin_process(record->pid, record->start_time);
    switch (pinned.liveness) {
      case Liveness::kAlive:
        spdlog::info("process {} (pid {}): watched again", key, record->pid);
        it->second.watch_failures = 0;
        watch_exit(key, generation, pinned.pidfd.release(), false);
        return;
      case Liveness::kGone:
        on_exit(key, generation, ExitStatus{});  // not our child: its status is unknown
        return;
      case Liveness::kReused:
        mark_lost(key);
        return;
      case Liveness::kUnknown:
        watch_exit_later(key, generation);
        return;
    }
  });
}

void ProcessService::watch_pattern(const ProcessKey& key, std::uint64_t generation, std::uint64_t offset) {
  const auto* record = registry_.find(key);
  if (record->pattern.empty()) {
    // No pattern (re-adopted while "starting"): it was ready once spawned.
    on_match(key, generation, std::string(), 0);
    return;
  }
  PatternWait::Callbacks callbacks;
  callbacks.on_match = [this, key, generation](const std::string& line, std::uint64_t end) {
    on_match(key, generation, line, end);
  };
  callbacks.on_line_limit = [this, key, generation] { on_line_limit(key, generation); };
  callbacks.on_too_complex = [this, key, generation](const std::string& why) {
    on_pattern_too_complex(key, generation, why);
  };
  try {
    supervision(key).pattern_wait = PatternWait::start(io_, record->log_path, offset, Pattern::compile(record->pattern),
                                                        record->max_read_lines, std::move(callbacks));
  } catch (const std::exception& e) {
    // Without its log the start can only end by exit or timeout.
    spdlog::error("cannot watch the log of process {}: {}", key, e.what());
  }
}

// -- what happens to a starting process ------------------------------------

void ProcessService::end_startup(Supervision& sup) {
  if (sup.pattern_wait) sup.pattern_wait->stop();
  if (sup.timer) sup.timer->cancel();
  sup.timer.reset();
}

void ProcessService::on_match(const ProcessKey& key, std::uint64_t generation, const std::string& line,
                              std::uint64_t offset) {
  auto* record = registry_.mutable_record(key);
  if (!record || record->generation != generation || record->state != ProcessState::kStarting) return;
  record->ready_offset = offset;
  record->ready_line = line;
  record->ready_at = wall_seconds();
  record->failure.clear();
  // Answering first: waiters are what this whole path is timed by.
  const auto step = registry_.fire(key, generation, ProcessEvent::kMatched);
  if (!step) return;
  auto& sup = supervision(key);
  end_startup(sup);
  sup.pattern_wait.reset();  // ready: the log is not read any more
  const auto* stored = registry_.find(key);
  spdlog::info("process {} ready (pid {}) after {:.3f}s", key, stored->pid, stored->ready_at - stored->started_at);
  persist(*stored);
  publish("process.ready", *stored);
  // while its pattern was awaited, the cap freed nothing unread;
  // a log that grew large meanwhile is capped now, in this same turn of the
  // loop, so whoever was told "ready" never sees it over the cap. One helper
  // becomes ready once per start, so this is not the burst request_log_caps()
  // coalesces.
  const std::uint64_t smallest_cap = std::min(log_limits_.per_log ? log_limits_.per_log : UINT64_MAX,
                                              log_limits_.per_owner ? log_limits_.per_owner : UINT64_MAX);
  struct stat st {};
  if (::lstat(stored->log_path.c_str(), &st) == 0 &&
      std::max<std::uint64_t>(st.st_size, static_cast<std::uint64_t>(st.st_blocks) * 512) > smallest_cap / 2)
    enforce_log_caps(stored->owner);
}

void ProcessService::on_line_limit(const ProcessKey& key, std::uint64_t generation) {
  const auto* record = registry_.find(key);
  if (!record || record->generation != generation) return;
  // with keep_on_timeout (lpd's xprocess fixture always
  // sends it) the process is left running, as pytest-xprocess leaves it.
  const bool keep = record->keep_on_timeout;
  const auto why = failure(ErrorCode::kUnavailable, key,
                           "none of the first " + std::to_string(record->max_read_lines) + " lines of process " +
                               key.name + " (pid " + std::to_string(record->pid) + ") matched " +
                               in_quotes(record->pattern),
                           keep ? "it is left running (--keep-on-timeout)" : "it is being killed");
  registry_.mutable_record(key)->failure = "no match within --max-read-lines " + std::to_string(record->max_read_lines);
  const auto step = registry_.fire(key, generation, keep ? ProcessEvent::kTimedOutKept : ProcessEvent::kLineLimit, &why);
  if (!step) return;
  end_startup(supervision(key));
  if (!keep) begin_kill(key, SIGTERM, to_millis(kDefaultGraceSeconds));
  persist(*registry_.find(key));
}

// the pattern's search of a line was given up (ReDoS bound).
// The start fails at once, as on a timeout: the helper is killed, or left
// running with keep_on_timeout (as pytest-xprocess leaves it); its log is
// not searched any more.
void ProcessService::on_pattern_too_complex(const ProcessKey& key, std::uint64_t generation, const std::string& why) {
  const auto* record = registry_.find(key);
  if (!record || record->generation != generation) return;
  const bool keep = record->keep_on_timeout;
  const auto failed = failure(ErrorCode::kBadRequest, key,
                              "process " + key.name + " (pid " + std::to_string(record->pid) + "): " + why,
                              keep ? "it is left running (--keep-on-timeout)" : "it is being killed");
  registry_.mutable_record(key)->failure = "its pattern was too complex for a line of its log";
  const auto step = registry_.fire(key, generation, keep ? ProcessEvent::kTimedOutKept : ProcessEvent::kLineLimit, &failed);
  if (!step) return;
  end_startup(supervision(key));
  if (!keep) begin_kill(key, SIGTERM, to_millis(kDefaultGraceSeconds));
  persist(*registry_.find(key));
}

void ProcessService::on_timeout(const ProcessKey& key, std::uint64_t generation) {
  const auto* record = registry_.find(key);
  if (!record || record->generation != generation) return;
  auto& sup = supervision(key);
  const bool keep = sup.timer_keeps;
  sup.timer.reset();
  const auto why = failure(ErrorCode::kTimeout, key,
                           "process " + key.name + " (pid " + std::to_string(record->pid) + ") printed no line matching " +
                               in_quotes(record->pattern) + " within " + fmt::format("{:g}", record->timeout) + " s",
                           keep ? "it is left running (--keep-on-timeout)" : "it is being killed");
  const auto step = registry_.fire(key, generation, keep ? ProcessEvent::kTimedOutKept : ProcessEvent::kTimedOut, &why);
  if (!step) return;
  registry_.mutable_record(key)->failure = "timed out waiting for its pattern";
  if (step->action == ProcessAction::kFailStartAndKill) {
    end_startup(sup);
    begin_kill(key, SIGTERM, to_millis(kDefaultGraceSeconds));
  }
  persist(*registry_.find(key));
}

void ProcessService::on_exit(const ProcessKey& key, std::uint64_t generation, const ExitStatus& status) {
  auto it = supervision_.find(key);
  if (it == supervision_.end() || it->second.generation != generation) return;
  auto wait = it->second.pattern_wait;
  const auto* record = registry_.find(key);
  if (wait && record && record->state == ProcessState::kStarting) {
    // Read what it wrote before dying: it may have printed the ready line
    // (then it was ready, briefly), and its last words go in the error.
    wait->finish([this, key, generation, status] { after_exit(key, generation, status); });
    return;
  }
  after_exit(key, generation, status);
}

void ProcessService::after_exit(const ProcessKey& key, std::uint64_t generation, const ExitStatus& status) {
  auto* record = registry_.mutable_record(key);
  if (!record || record->generation != generation) return;
  const ProcessState before = record->state;
  // with no pattern, "starting" is the moment between its spawn and the answer.
  const bool no_pattern = record->pattern.empty();
  const auto why = failure(ErrorCode::kUnavailable, key,
                           "process " + key.name + " (pid " + std::to_string(record->pid) + ") exited with " +
                               status.describe() +
                               (no_pattern ? std::string(" right after it started (no pattern was given: it counts as "
                                                         "ready only while it runs)")
                                           : " before a line matched " + in_quotes(record->pattern)));
  record->exit = status;
  record->ended_at = wall_seconds();
  if (before == ProcessState::kStarting)
    record->failure = no_pattern ? "exited right after it started" : "exited before its pattern matched";
  const auto step = registry_.fire(key, generation, ProcessEvent::kExited, &why);
  if (!step) return;
  auto& sup = supervision(key);
  end_startup(sup);
  sup.pattern_wait.reset();
  sup.exit_watch.reset();
  if (auto* exited = registry_.mutable_record(key); exited && exited->state == ProcessState::kExited && !sup.kill_job &&
                                                    !exited->cgroup_dir.empty()) {
    // A kill waits for the whole tree; an exit does not: what is left runs
    // on (a daemonizing server must), listed, until `lpctl kill` stops it.
    exited->left_running = left_running_in(exited->cgroup_dir);
    if (!exited->left_running.empty())
      spdlog::warn("process {} (pid {}) exited; its tree still runs {} process(es): {}; `lpctl kill {}` stops them",
                   key, exited->pid, exited->left_running.size(), describe_left(exited->left_running), key.name);
  }
  const auto* stored = registry_.find(key);
  spdlog::info("process {} (pid {}) {}: {}", key, stored->pid, to_string(stored->state), status.describe());
  persist(*stored);
  publish(stored->state == ProcessState::kKilled ? "process.killed" : "process.exited", *stored);
  end_followers(key);
  end_leases(key);
  // nobody writes its log now; what it wrote last is capped too.
  log_watch_->unwatch(stored->log_path);
  if (!stored->cgroup_dir.empty()) {  // only a tree lpd can see has surely ended
    int error = 0;
    if (cgroup_members(stored->cgroup_dir, &error).empty() && (error == 0 || error == ENOENT))
      release_reserved_log_space(*stored);
  }
  request_log_caps(stored->owner);
  finish_kill_if_done(key);
  start_pending(key);
}

// -- kill ------------------------------------------------------------------

void ProcessService::mark_lost(const ProcessKey& key) {
  auto* record = registry_.mutable_record(key);
  if (!record) return;
  auto& sup = supervision(key);
  end_startup(sup);
  if (sup.exit_watch) sup.exit_watch->cancel();
  sup = Supervision{};
  sup.generation = record->generation;
  record->state = ProcessState::kLost;
  record->ended_at = wall_seconds();
  spdlog::warn("process {}: pid {} now belongs to another program; marked lost and left alone", key, record->pid);
  // Anyone still waiting for its start or a restart will not get it.
  registry_.fail_waiters(key, StartFailure{ErrorCode::kConflict, "process " + key.name + " was lost (its pid was reused)"});
  persist(*record);
  publish("process.lost", *record);
  end_followers(key);
  end_leases(key);
  log_watch_->unwatch(record->log_path);
}

void ProcessService::kill(const ProcessKey& key, int signo, std::chrono::milliseconds grace, KillDone done) {
  const auto* record = registry_.find(key);
  if (!record) throw Error(ErrorCode::kNotFound, "no process named " + in_quotes(key.full_name()));
  auto not_running = [this, &key, &done] {
    if (!done) return;
    nlohmann::json result = describe(*registry_.find(key));
    result["was_running"] = false;
    done(result);
  };
  if (!is_running(record->state)) {
    if (!kill_left_running(key, signo, grace, done)) not_running();
    return;
  }
  if (check_liveness(record->pid, record->start_time) == Liveness::kReused) {
    mark_lost(key);
    not_running();
    return;
  }
  auto& sup = supervision(key);
  if (done) sup.kill_waiters.push_back(std::move(done));
  const auto why = failure(ErrorCode::kConflict, key, "process " + key.name + " was killed while it was starting");
  const auto step = registry_.fire(key, record->generation, ProcessEvent::kKillRequested, &why);
  if (!step) return;
  if (step->action == ProcessAction::kNone) {
    // A kill is already under way; a different signal is still delivered.
    if (sup.kill_job && signo != sup.kill_signal) sup.kill_job->resignal(signo);
    return;
  }
  end_startup(sup);
  begin_kill(key, signo, grace);
  persist(*registry_.find(key));
}

std::vector<SupervisedProcess::LeftRunning> ProcessService::left_running_in(const std::string& cgroup_dir) {
  std::vector<SupervisedProcess::LeftRunning> left;
  for (pid_t pid : cgroup_members(cgroup_dir)) {
    if (left.size() >= kMaxLeftRunning) break;
    left.push_back({pid, read_cmdline(pid)});
  }
  return left;
}

std::string ProcessService::describe_left(const std::vector<SupervisedProcess::LeftRunning>& left) {
  std::string text;
  for (const auto& process : left) {
    if (!text.empty()) text += ", ";
    text += "pid " + std::to_string(process.pid) + ": " + process.argv;
  }
  return text;
}

bool ProcessService::kill_left_running(const ProcessKey& key, int signo, std::chrono::milliseconds grace,
                                       KillDone& done) {
  auto* record = registry_.mutable_record(key);
  if (!record || record->cgroup_dir.empty()) return false;
  auto left = left_running_in(record->cgroup_dir);
  if (left.empty()) {
    if (!record->left_running.empty()) {
      record->left_running.clear();  // ended on their own meanwhile
      persist(*record);
    }
    return false;
  }
  spdlog::info("process {} had exited; stopping the {} process(es) its tree left running: {}", key, left.size(),
               describe_left(left));
  auto job = std::make_shared<KillJob>(io_, record->cgroup_dir, signo, grace);
  supervision(key).kill_job = job;
  job->start([this, key, left, done = std::move(done)](const KillJob::Result& result) {
    auto* r = registry_.mutable_record(key);
    if (!r) return;
    r->left_running.clear();
    persist(*r);
    publish("process.killed", *r);
    if (!done) return;
    nlohmann::json reply = describe(*r);
    reply["was_running"] = false;
    reply["forced"] = result.forced;
    reply["signal"] = 0;
    nlohmann::json killed = nlohmann::json::array();
    for (const auto& process : left) killed.push_back({{"pid", process.pid}, {"argv", process.argv}});
    reply["left_running_killed"] = std::move(killed);
    done(reply);
  });
  return true;
}

void ProcessService::begin_kill(const ProcessKey& key, int signo, std::chrono::milliseconds grace) {
  const auto* record = registry_.find(key);
  auto& sup = supervision(key);
  sup.kill_done = false;
  sup.kill_forced = false;
  sup.kill_signal = signo;
  spdlog::info("killing process {} (pid {}) and its process group with signal {}", key, record->pid, signo);
  sup.kill_job = std::make_shared<KillJob>(io_, record->pid, signo, grace);
  const std::uint64_t generation = record->generation;
  sup.kill_job->start([this, key, generation](const KillJob::Result& result) {
    auto it = supervision_.find(key);
    if (it == supervision_.end() || it->second.generation != generation) return;
    it->second.kill_done = true;
    it->second.kill_forced = result.forced;
    finish_kill_if_done(key);
  });
}

// (attack finding 6): space a helper reserved past its log's end
// (fallocate --keep-size) is given back once nothing of its tree can write
// the log, so it does not count against its owner's other logs.
void ProcessService::release_reserved_log_space(const SupervisedProcess& record) {
  try {
    if (const auto freed = release_reserved_past_end(record.log_path); freed > 0)
      spdlog::info("process {}: freed {} bytes it had reserved past the end of its log {}", record.key(), freed,
                   record.log_path);
  } catch (const std::system_error& e) {
    spdlog::warn("process {}: {}", record.key(), e.what());
  }
}

void ProcessService::finish_kill_if_done(const ProcessKey& key) {
  auto it = supervision_.find(key);
  if (it == supervision_.end()) return;
  auto& sup = it->second;
  const auto* record = registry_.find(key);
  // Both the whole group gone and the leader's end recorded, so the reply
  // and `ps` agree.
  if (!record || !sup.kill_done || is_running(record->state)) return;
  release_reserved_log_space(*record);  // its whole group is gone
  auto waiters = std::move(sup.kill_waiters);
  sup.kill_waiters.clear();
  nlohmann::json result = describe(*record);
  result["was_running"] = true;
  result["forced"] = sup.kill_forced;
  result["signal"] = sup.kill_signal;
  for (auto& waiter : waiters) waiter(result);
}

// -- leases ----------------------------------------------------------------

std::optional<nlohmann::json> ProcessService::release_instead_of_kill(const ProcessKey& key, std::uint64_t session,
                                                                      bool force) {
  const auto* record = registry_.find(key);
  if (!record || !is_running(record->state)) return std::nullopt;
  const bool holds = leases_.holds(key, session);
  if (kill_verdict(force, holds, leases_.holders(key, record->generation)) == KillVerdict::kKill) {
    if (holds) leases_.release(key, session);
    return std::nullopt;
  }
  return release(key, session);
}

// -- proc.kill_all and leases -----------------------------------------
BulkKillVerdict kill_all_verdict(bool force, bool caller_holds, std::size_t holders_including_caller) {
  if (force) return BulkKillVerdict::kKill;
  const std::size_t others = holders_including_caller - (caller_holds && holders_including_caller > 0 ? 1 : 0);
  if (others == 0) return BulkKillVerdict::kKill;
  return caller_holds ? BulkKillVerdict::kReleaseOnly : BulkKillVerdict::kKeep;
}

std::optional<nlohmann::json> ProcessService::spare_from_kill_all(const ProcessKey& key, std::uint64_t session,
                                                                  bool force) {
  const auto* record = registry_.find(key);
  if (!record || !is_running(record->state)) return std::nullopt;
  const bool holds = leases_.holds(key, session);
  const std::size_t holders = leases_.holders(key, record->generation);
  switch (kill_all_verdict(force, holds, holders)) {
    case BulkKillVerdict::kKill:
      if (holds) leases_.release(key, session);
      return std::nullopt;
    case BulkKillVerdict::kReleaseOnly:
      return release(key, session);
    case BulkKillVerdict::kKeep:
      break;
  }
  spdlog::info("process {}: kill-all left it running: {} connection(s) hold it", key, holders);
  return nlohmann::json{{"name", key.name}, {"scope", key.scope}, {"full_name", key.full_name()},
                        {"kept", true},     {"holders", holders}, {"state", to_string(record->state)},
                        {"pid", record->pid}, {"was_running", true}};
}

nlohmann::json ProcessService::release(const ProcessKey& key, std::uint64_t session) {
  const auto* record = registry_.find(key);
  if (!record) throw Error(ErrorCode::kNotFound, "no process named " + in_quotes(key.full_name()));
  const bool released = leases_.release(key, session);
  const std::size_t holders = leases_.holders(key, record->generation);
  if (released) {
    spdlog::info("process {}: a holder let go, {} left", key, holders);
    publish_holders(key);
  }
  stop_if_unheld(key);
  return {{"name", key.name},           {"scope", key.scope},     {"full_name", key.full_name()},
          {"released", released},       {"holders", holders},     {"state", to_string(record->state)},
          {"pid", record->pid}};
}

void ProcessService::stop_if_unheld(const ProcessKey& key, double at_least) {
  const auto* record = registry_.find(key);
  if (!record || !record->leased) return;
  if (record->state != ProcessState::kStarting && record->state != ProcessState::kReady) return;
  if (leases_.holders(key, record->generation) > 0) return;
  auto& sup = supervision(key);
  if (sup.linger_timer) return;  // already counting down
  const double delay = std::max(record->linger, at_least);
  const std::uint64_t generation = record->generation;
  spdlog::info("process {}: no holder left; stopping it in {:g} s", key, delay);
  // Even with no linger the kill runs from the loop, never inside the
  // answer to an ensure or the end of a connection that led here.
  sup.linger_timer = std::make_unique<boost::asio::steady_timer>(io_);
  sup.linger_timer->expires_after(to_millis(delay));
  sup.linger_timer->async_wait([this, key, generation](boost::system::error_code ec) {
    if (ec) return;
    auto it = supervision_.find(key);
    if (it == supervision_.end() || it->second.generation != generation) return;
    it->second.linger_timer.reset();
    const auto* now = registry_.find(key);
    if (!now || now->generation != generation || leases_.holders(key, generation) > 0) return;
    if (now->state != ProcessState::kStarting && now->state != ProcessState::kReady) return;
    spdlog::info("process {} (pid {}): its last holder is gone; stopping it", key, now->pid);
    kill(key, SIGTERM, to_millis(kDefaultGraceSeconds), nullptr);
  });
}

void ProcessService::publish_holders(const ProcessKey& key) {
  const auto* record = registry_.find(key);
  if (!record || !is_running(record->state)) return;
  events_.publish("process.holders", describe(*record), {}, record->owner);
}

void ProcessService::end_leases(const ProcessKey& key) {
  leases_.ended(key);
  auto it = supervision_.find(key);
  if (it != supervision_.end() && it->second.linger_timer) {
    it->second.linger_timer->cancel();
    it->second.linger_timer.reset();
  }
}

// -- logs ------------------------------------------------------------------

nlohmann::json ProcessService::stream_logs(const ProcessKey& key, std::optional<std::uint64_t> lines, bool follow,
                                           std::uint64_t session, std::weak_ptr<ReplySink> sink,
                                           ReplySink::StreamSlot slot) {
  const auto* record = registry_.find(key);
  if (!record) throw Error(ErrorCode::kNotFound, "no process named " + in_quotes(key.full_name()));
  const std::string path = record->log_path;
  const std::uint64_t size = file_size(path);
  std::uint64_t start = lines ? offset_of_last_lines(path, *lines, size) : 0;
  // what the size cap freed is neither sent nor counted as skipped.
  const std::uint64_t dropped = std::min(first_kept_offset(path), size);
  start = std::max(start, dropped);
  std::uint64_t skipped = 0;
  if (size - start > kMaxLogReplyBytes) {
    skipped = size - kMaxLogReplyBytes - start;
    start = size - kMaxLogReplyBytes;
  }
  auto end_data = [this, key] {
    const auto* r = registry_.find(key);
    if (!r) return nlohmann::json::object();
    const auto full = describe(*r);
    return nlohmann::json{{"state", full["state"]}, {"exit_status", full["exit_status"]}};
  };
  std::shared_ptr<LogStream> stream;
  try {
    stream = LogStream::open(io_, key.name, path, start, std::move(sink), end_data);
  } catch (const std::system_error& e) {
    throw Error(ErrorCode::kNotFound, std::string("the log of process ") + key.name + " cannot be read: " + e.what());
  }
  stream->hold(std::move(slot));
  const bool following = follow && is_running(record->state);
  if (following) {
    stream->follow();
    followers_.emplace(key, Follower{session, stream});
  } else {
    stream->read_until(size);
  }
  return {{"name", key.name}, {"scope", key.scope}, {"full_name", key.full_name()}, {"log_path", path}, {"offset", start},
          {"size", size},     {"skipped_bytes", skipped},   {"following", following},
          {"dropped_bytes", dropped},
          {"state", to_string(record->state)}};
}

void ProcessService::end_followers(const ProcessKey& key) {
  auto [first, last] = followers_.equal_range(key);
  for (auto it = first; it != last; ++it) it->second.stream->end();
  followers_.erase(first, last);
}

void ProcessService::peer_gone(const Peer& peer) {
  const std::uint64_t session = peer.session_id;
  for (const auto& key : leases_.peer_gone(session)) {
    publish_holders(key);
    stop_if_unheld(key);
  }
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
    // A record is only believed under its own file name: procs/STEM.json,
    // or procs/NAME.json for one written before scopes (it has none).
    const bool legacy = record && !value->contains("scope") && record->name + ".json" == file;
    if (!record || (!legacy && record_file(record->key()) != "procs/" + file) ||
        registry_.find(record->key())) {
      spdlog::warn("ignoring unreadable process record {}", store_.path("procs/" + file));
      continue;
    }
    const ProcessKey key = record->key();
    if (!record->cgroup_dir.empty() && !is_launch_cgroup(supervision_cgroup_base(), record->cgroup_dir)) {
      // Only a cgroup lpd's launcher makes is ever signalled.
      spdlog::warn("process record {}: cgroup {} is not one lpd made; ignored", store_.path("procs/" + file),
                   record->cgroup_dir);
      record->cgroup_dir.clear();
      record->left_running.clear();
    }
    if (legacy) {
      // Moved to its new name; persist() below (or here) writes it.
      spdlog::info("process record {} moves to {}", store_.path("procs/" + file), store_.path(record_file(key)));
      persist(*record);
      try {
        store_.remove("procs/" + file);
      } catch (const std::exception& e) {
        spdlog::warn("cannot remove the old process record {}: {}", store_.path("procs/" + file), e.what());
      }
    }
    if (!is_running(record->state)) {
      // what an ended helper's tree still runs is listed again
      // (its processes may have ended, or the leader ended while lpd was
      // down): kill-all, ps and the record limit go by it.
      if (!record->cgroup_dir.empty()) {
        record->left_running = left_running_in(record->cgroup_dir);
        if (!record->left_running.empty())
          spdlog::warn("process {} exited, but its tree still runs {} process(es): {}; `lpctl kill {}` stops them",
                       key, record->left_running.size(), describe_left(record->left_running), key.full_name());
      }
      registry_.restore(std::move(*record));
      continue;
    }
    // The pidfd pins the pid, then /proc says whether it is still the same
    // process. Only the kernel's "no such process" or another start time
    // ends it; a failure to look (EMFILE...) re-adopts it all the same.
    PinnedProcess pinned = pin_process(record->pid, record->start_time);
    const Liveness liveness = pinned.liveness;
    const ProcessState was = record->state;
    if (liveness == Liveness::kGone || liveness == Liveness::kReused) {
      record->state = liveness == Liveness::kReused ? ProcessState::kLost : ProcessState::kExited;
      record->exit = ExitStatus{};  // not our child any more: unknown
      record->ended_at = wall_seconds();
      // a daemonizing helper's server outlives its leader.
      if (!record->cgroup_dir.empty()) record->left_running = left_running_in(record->cgroup_dir);
      registry_.restore(std::move(*record));
      const auto* stored = registry_.find(key);
      if (stored->state == ProcessState::kLost) {
        spdlog::warn("process {}: pid {} now belongs to another program; marked lost and left alone", key,
                     stored->pid);
      } else {
        spdlog::info("process {} (pid {}) ended while lpd was down", key, stored->pid);
      }
      persist(*stored);
      publish(stored->state == ProcessState::kLost ? "process.lost" : "process.exited", *stored);
      continue;
    }
    record->adopted = true;
    // A kill in progress died with the old lpd, and its requester with it.
    if (was == ProcessState::kStopping) record->state = ProcessState::kReady;
    registry_.restore(std::move(*record));
    const auto* stored = registry_.find(key);
    auto& sup = supervision(key);
    sup = Supervision{};
    sup.generation = stored->generation;
    if (liveness == Liveness::kAlive) {
      watch_exit(key, stored->generation, pinned.pidfd.release(), false);
    } else {
      spdlog::warn("process {} (pid {}): cannot tell whether it still runs ({}); re-adopted, watching it once lpd can",
                   key, stored->pid, describe_shortage(pinned.error));
      watch_exit_later(key, stored->generation);
    }
    // Still starting: watch its log again from the start; nobody waits,
    // so there is no timeout.
    if (stored->state == ProcessState::kStarting) watch_pattern(key, stored->generation, 0);
    spdlog::info("re-adopted process {} (pid {}, {})", key, stored->pid, to_string(stored->state));
    persist(*stored);
    // Leases ended with the old lpd's connections: holders get a moment
    // to come back (ensure with a lease) before a leased helper is stopped.
    stop_if_unheld(key, kRestoreLeaseGraceSeconds);
    watch_log(*stored);
  }
  // helpers wrote on while lpd was down; cap every owner's logs now.
  std::set<uid_t> owners;
  for (const auto* record : registry_.all()) owners.insert(record->owner);
  for (uid_t owner : owners) enforce_log_caps(owner);
}

// -- the helper log cap ------------------------------------------

void ProcessService::watch_log(const SupervisedProcess& record) {
  if (log_limits_.per_log == 0 && log_limits_.per_owner == 0) return;
  if (!log_watch_->watch(record.log_path, record.owner))
    spdlog::warn("process {}: cannot watch its log {} for the size cap ({}); it is capped when it ends or lpd restarts",
                 record.key(), record.log_path, std::strerror(errno));
}

void ProcessService::request_log_caps(uid_t owner) {
  log_caps_pending_.insert(owner);
  if (log_caps_timer_) return;  // one check of each pending owner is on its way
  log_caps_timer_ = std::make_unique<boost::asio::steady_timer>(io_, std::chrono::milliseconds(20));
  log_caps_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;  // cancelled: the service is going away
    log_caps_timer_.reset();
    const auto owners = std::exchange(log_caps_pending_, {});
    for (uid_t owner : owners) enforce_log_caps(owner);
  });
}

void ProcessService::enforce_log_caps(uid_t owner) {
  if (log_limits_.per_log == 0 && log_limits_.per_owner == 0) return;
  const std::string logs_dir = store_.path("logs");
  if (log_block_ == 0) log_block_ = log_block_size(logs_dir);
  std::vector<LogUse> uses;
  std::map<std::string, ProcessKey> whose;  // path -> the record that keeps it
  for (const auto* record : registry_.all()) {
    if (record->owner != owner) continue;
    const std::string stem = process_file_stem(record->key());
    for (const auto& path : record->logs) {
      // Only lpd's own logs/STEM.N.log, whatever a state file says.
      if (!is_log_of(path, logs_dir, stem) || whose.count(path)) continue;
      auto use = measure_log(path);
      if (!use) continue;
      use->current = path == record->log_path;
      use->live = use->current && is_running(record->state);
      if (auto it = supervision_.find(record->key());
          use->live && it != supervision_.end() && it->second.pattern_wait && record->state == ProcessState::kStarting)
        use->free_limit = it->second.pattern_wait->read_offset();  // its ready line may be ahead: keep it
      whose.emplace(path, record->key());
      uses.push_back(std::move(*use));
    }
  }
  std::set<ProcessKey> changed;
  // A restarted lpd learns from the file what an earlier one freed.
  for (const auto& use : uses) {
    auto* record = registry_.mutable_record(whose.at(use.path));
    if (use.current && use.kept_from > record->log_dropped_bytes && use.kept_from <= use.size) {
      record->log_dropped_bytes = use.kept_from;
      changed.insert(record->key());
    }
  }
  std::uint64_t freed_now = 0;  // how far over its caps this owner got in one window
  for (const auto& freeing : plan_log_freeing(uses, log_limits_, log_block_)) {
    const ProcessKey key = whose.at(freeing.path);
    auto* record = registry_.mutable_record(key);
    if (freeing.how == LogFreeing::How::kRemove) {
      if (::unlink(freeing.path.c_str()) != 0 && errno != ENOENT) {
        spdlog::warn("process {}: cannot remove its old log {} (helper logs of uid {} are over {} bytes): {}", key,
                     freeing.path, owner, log_limits_.per_owner, std::strerror(errno));
        continue;
      }
      spdlog::info("process {}: removed its old log {}: helper logs of uid {} were over --helper-logs-per-user-max "
                   "({} bytes)", key, freeing.path, owner, log_limits_.per_owner);
      std::erase(record->logs, freeing.path);
      persist(*record);  // the record must not name a file that is gone
      changed.insert(key);
      continue;
    }
    FrontFreed freed;
    try {
      freed = free_log_front(freeing.path, freeing.keep_from);
    } catch (const std::system_error& e) {
      spdlog::warn("process {}: its log is over its cap but cannot be cut: {}", key, e.what());
      continue;
    }
    const bool current = freeing.path == record->log_path;
    const std::uint64_t before = record->log_dropped_bytes;
    if (auto it = std::find_if(uses.begin(), uses.end(), [&](const LogUse& u) { return u.path == freeing.path; });
        it != uses.end())
      freed_now += freed.truncated ? freed.bytes : (freed.bytes > it->kept_from ? freed.bytes - it->kept_from : 0);
    if (current) record->log_dropped_bytes = dropped_after(before, freed.truncated, freed.bytes);
    // The first cut of a start is worth a line in lpd's log; a chatty
    // helper's next ones only at debug level, or lpd's own log would grow.
    const auto level = current && before == 0 ? spdlog::level::warn : spdlog::level::debug;
    spdlog::log(level, "process {}: log {} is over its cap (--helper-log-max {} bytes, --helper-logs-per-user-max {} "
                       "bytes for uid {}): {} its oldest output, {} bytes dropped in all",
                key, freeing.path, log_limits_.per_log, log_limits_.per_owner, owner,
                freed.truncated ? "emptied (its file system cannot free part of a file), dropping" : "freed",
                current ? record->log_dropped_bytes : freed.bytes);
    if (current) changed.insert(key);
  }
  for (const auto& key : changed) note_dropped(key);
  // (attack finding 7): more freed in one window than a whole cap
  // holds: its helpers write faster than one window allows; look sooner.
  const std::uint64_t smallest_cap = std::min(log_limits_.per_log ? log_limits_.per_log : UINT64_MAX,
                                              log_limits_.per_owner ? log_limits_.per_owner : UINT64_MAX);
  if (freed_now > smallest_cap) log_watch_->hurry();
}

void ProcessService::note_dropped(const ProcessKey& key) {
  auto& sup = supervision(key);
  if (sup.drop_note_timer) return;  // one is due: it will carry this change too
  auto send = [this](const ProcessKey& k) {
    const auto* record = registry_.find(k);
    if (!record) return;
    auto& s = supervision(k);
    s.last_drop_note = std::chrono::steady_clock::now();
    persist(*record);
    publish("process.log_dropped", *record);
  };
  const auto due = sup.last_drop_note + kDropNoteInterval;
  if (std::chrono::steady_clock::now() >= due) {
    send(key);
    return;
  }
  const std::uint64_t generation = sup.generation;
  sup.drop_note_timer = std::make_unique<boost::asio::steady_timer>(io_);
  sup.drop_note_timer->expires_at(due);
  sup.drop_note_timer->async_wait([this, key, generation, send](boost::system::error_code ec) {
    if (ec) return;
    auto it = supervision_.find(key);
    if (it == supervision_.end() || it->second.generation != generation) return;
    it->second.drop_note_timer.reset();
    send(key);
  });
}

void ProcessService::make_room_for(const ProcessKey& key) {
  if (key.owner == 0 || log_limits_.helpers_per_owner == 0) return;
  std::vector<const SupervisedProcess*> mine;
  std::vector<HelperAge> ages;
  for (const auto* record : registry_.all()) {
    if (record->owner != key.owner) continue;
    mine.push_back(record);
    ages.push_back({tree_runs(*record), record->ended_at});  // a tree left running is never forgotten
  }
  const HelperRoom room = make_room_for_helper(ages, log_limits_.helpers_per_owner);
  if (room.refused)
    throw Error(ErrorCode::kLimitExceeded,
                "uid " + std::to_string(key.owner) + " already runs " + std::to_string(mine.size()) +
                    " helper processes, lpd's limit per user (--helpers-per-user-max " +
                    std::to_string(log_limits_.helpers_per_owner) + "); stop one (`lpctl kill NAME`) first");
  std::vector<ProcessKey> forget;
  for (std::size_t i : room.forget) forget.push_back(mine[i]->key());
  const std::string logs_dir = store_.path("logs");
  for (const auto& old : forget) {
    const auto* record = registry_.find(old);
    const std::string stem = process_file_stem(old);
    for (const auto& path : record->logs)
      if (is_log_of(path, logs_dir, stem) && ::unlink(path.c_str()) != 0 && errno != ENOENT)
        spdlog::warn("process {}: cannot remove its log {}: {}", old, path, std::strerror(errno));
    try {
      store_.remove(record_file(old));
    } catch (const std::exception& e) {
      spdlog::warn("cannot remove the process record {}: {}", store_.path(record_file(old)), e.what());
    }
    spdlog::info("process {} ended long ago; forgotten (with its logs) to make room for {} (--helpers-per-user-max {})",
                 old, key, log_limits_.helpers_per_owner);
    end_followers(old);
    supervision_.erase(old);
    registry_.erase(old);
  }
}

}  // namespace lpd::daemon
