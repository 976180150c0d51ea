#include "shim/native/src/shim.h"

#include <cstdlib>
#include <ctime>

#include <pthread.h>
#include <unistd.h>

#include "protocol/message.h"
#include "protocol/paths.h"
#include "shim/native/src/crash_handler.h"
#include "shim/native/src/messages.h"
#include "shim/native/src/process_info.h"

namespace lpd::shim {
namespace {

using protocol::json;

/// The daemon's own timer answers a pause; this grace only guards against a
/// daemon that never does.
constexpr double kReplyGraceSeconds = 5.0;
constexpr double kDefaultPauseSeconds = 300.0;
constexpr auto kRequestTimeout = std::chrono::seconds(10);
constexpr auto kReconnectInterval = std::chrono::seconds(1);
constexpr unsigned kDrainEvery = 256;

thread_local std::string t_last_error;

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

void sleep_for(std::chrono::milliseconds ms) {
  timespec ts{static_cast<time_t>(ms.count() / 1000), static_cast<long>(ms.count() % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

PauseOutcome::How how_of(const std::string& status) {
  if (status == "resumed") return PauseOutcome::How::kResumed;
  if (status == "stale") return PauseOutcome::How::kStale;
  return PauseOutcome::How::kTimedOut;
}

}  // namespace

const std::string& last_error() { return t_last_error; }
void set_last_error(std::string text) { t_last_error = std::move(text); }

Settings settings_from_env() {
  Settings s;
  s.socket_path = env_or_empty("LPD_SOCKET");
  s.run_id = env_or_empty("LPD_RUN_ID");
  s.worker_id = env_or_empty("LPD_WORKER_ID");
  const std::string mock = env_or_empty("LPD_CHECKPOINT_MOCK");
  if (mock == "true") s.checkpoint_mock = std::optional<bool>(true);
  if (mock == "false") s.checkpoint_mock = std::optional<bool>(false);
  if (mock == "none") s.checkpoint_mock = std::optional<bool>();
  return s;
}

Shim& Shim::instance() {
  // Never destroyed: a test's static destructors or a crash may still call in.
  static Shim* shim = [] {
    auto* s = new Shim();
    pthread_atfork(nullptr, nullptr, [] { Shim::instance().disable_after_fork(); crash::set_connection(-1, 0); });
    return s;
  }();
  return *shim;
}

Shim::Mode Shim::ensure_configured() {
  Mode mode = mode_.load(std::memory_order_acquire);
  if (mode != Mode::kUnconfigured) return mode;
  std::lock_guard lock(mu_);
  mode = mode_.load();
  if (mode != Mode::kUnconfigured) return mode;
  settings_ = settings_from_env();
  if (settings_.socket_path.empty()) {
    mode_.store(Mode::kDisabled, std::memory_order_release);
    return Mode::kDisabled;
  }
  mode_.store(Mode::kEnabled, std::memory_order_release);
  open_locked();  // a daemon not up yet is retried later
  return Mode::kEnabled;
}

Status Shim::connect_from_env() {
  const Mode mode = ensure_configured();
  if (mode != Mode::kEnabled) return Status::kDisabled;
  std::lock_guard lock(mu_);
  if (conn_) return Status::kOk;
  return open_locked();
}

Status Shim::connect(std::string_view socket_path, std::string_view run_id) {
  if (mode_.load() == Mode::kForked) return Status::kDisabled;
  std::lock_guard lock(mu_);
  if (mode_.load() == Mode::kUnconfigured) settings_ = settings_from_env();
  if (!socket_path.empty())
    settings_.socket_path = socket_path;
  else if (settings_.socket_path.empty())
    settings_.socket_path = protocol::default_socket_path(::geteuid(), protocol::process_env());
  if (!run_id.empty()) settings_.run_id = run_id;
  drop_locked();
  mode_.store(Mode::kEnabled, std::memory_order_release);
  return open_locked();
}

bool Shim::is_connected() {
  if (mode_.load() != Mode::kEnabled) return false;
  std::lock_guard lock(mu_);
  return conn_ != nullptr;
}

std::string Shim::run_id() {
  if (mode_.load() != Mode::kEnabled) return {};
  std::lock_guard lock(mu_);
  return settings_.run_id;
}

Status Shim::open_locked() {
  last_attempt_ = Clock::now();
  try {
    auto conn = std::make_unique<Connection>(settings_.socket_path);
    const auto deadline = Clock::now() + kRequestTimeout;
    std::int64_t id = next_id_++;
    conn->send_line(messages::hello(id, ::getpid()));
    protocol::result_or_throw(conn->wait_reply(id, deadline));
    const ProcessInfo info = current_process_info();
    id = next_id_++;
    conn->send_line(
        messages::run_register(id, settings_.run_id, settings_.worker_id, info.argv, info.cwd, info.hostname));
    const json result = protocol::result_or_throw(conn->wait_reply(id, deadline));
    settings_.run_id = result.value("run_id", settings_.run_id);  // a reconnect rejoins the same run
    conn_ = std::move(conn);
    crash::set_connection(conn_->fd(), ::getpid());
    sent_since_drain_ = 0;
    return Status::kOk;
  } catch (const Unavailable& e) {
    set_last_error(e.what());
    return Status::kUnavailable;
  } catch (const protocol::Error& e) {
    set_last_error(std::string("lpd refused the connection: ") + e.what());
    return e.code() == protocol::ErrorCode::kTimeout ? Status::kUnavailable : Status::kError;
  } catch (const std::exception& e) {
    set_last_error(e.what());
    return Status::kError;
  }
}

void Shim::drop_locked() {
  crash::set_connection(-1, 0);
  conn_.reset();
}

bool Shim::reconnect_if_due_locked() {
  if (conn_) return true;
  if (Clock::now() - last_attempt_ < kReconnectInterval) {
    set_last_error("lpd at " + settings_.socket_path + " is unreachable (retried at most once a second)");
    return false;
  }
  return open_locked() == Status::kOk;
}

Status Shim::notify(std::string line) {
  if (!reconnect_if_due_locked()) return Status::kUnavailable;
  try {
    conn_->send_line(line);
    if (++sent_since_drain_ >= kDrainEvery) {
      sent_since_drain_ = 0;
      conn_->drain();
    }
    return Status::kOk;
  } catch (const Unavailable& e) {
    set_last_error(e.what());
    drop_locked();
    return Status::kUnavailable;
  }
}

Status Shim::test_started(std::string_view nodeid) {
  if (ensure_configured() != Mode::kEnabled) return Status::kDisabled;
  std::lock_guard lock(mu_);
  current_nodeid_ = nodeid;
  crash::set_current_test(nodeid);  // before the line leaves: a crash right after is attributed
  return notify(messages::test_start(nodeid));
}

Status Shim::test_finished(std::string_view nodeid, std::string_view outcome, double duration,
                           std::string_view message) {
  if (ensure_configured() != Mode::kEnabled) return Status::kDisabled;
  std::lock_guard lock(mu_);
  current_nodeid_.clear();
  crash::set_current_test("");
  return notify(messages::test_finish(nodeid, outcome, duration, message));
}

json Shim::request_locked(const std::string& line, std::int64_t id, std::optional<Clock::time_point> deadline) {
  conn_->send_line(line);
  return protocol::result_or_throw(conn_->wait_reply(id, deadline));
}

Status Shim::checkpoint(std::string_view task, double timeout, PauseOutcome& out) {
  out = PauseOutcome{};
  const Mode mode = ensure_configured();
  if (mode == Mode::kForked) return Status::kDisabled;
  std::string nodeid;
  {
    std::lock_guard lock(mu_);
    if (settings_.checkpoint_mock) {
      out.how = PauseOutcome::How::kMock;
      out.result = *settings_.checkpoint_mock;
      out.reason = "Mock";
      return Status::kOk;
    }
    nodeid = current_nodeid_;
  }
  if (mode != Mode::kEnabled) return Status::kDisabled;
  return pause("checkpoint", std::move(nodeid), task, "", timeout, out);
}

Status Shim::pause_on_failure(std::optional<std::string_view> nodeid, std::string_view failure_text, double timeout,
                              PauseOutcome& out, std::string pause_id) {
  out = PauseOutcome{};
  if (ensure_configured() != Mode::kEnabled) return Status::kDisabled;
  std::string id;
  if (nodeid) {
    id = *nodeid;
  } else {
    std::lock_guard lock(mu_);
    id = current_nodeid_;
  }
  return pause("failure", std::move(id), "", failure_text, timeout, out, std::move(pause_id));
}

Status Shim::pause(std::string_view kind, std::string nodeid, std::string_view task,
                   std::string_view original_failure, double timeout, PauseOutcome& out, std::string pause_id) {
  if (!(timeout > 0)) timeout = kDefaultPauseSeconds;
  std::lock_guard lock(mu_);
  if (!conn_ && open_locked() != Status::kOk) return Status::kUnavailable;

  const ProcessInfo info = current_process_info();
  messages::PauseRequest request{settings_.run_id, std::string(kind), std::move(nodeid), std::string(task),
                                 std::string(original_failure), timeout,
                                 pause_id.empty() ? messages::new_pause_id() : std::move(pause_id),
                                 settings_.worker_id, info.hostname, info.cwd};
  out.pause_id = request.pause_id;
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout + kReplyGraceSeconds));
  auto backoff = std::chrono::milliseconds(50);
  for (;;) {
    if (Clock::now() >= deadline) {
      out.how = PauseOutcome::How::kTimedOut;
      return Status::kOk;
    }
    try {
      if (!conn_) {
        // The daemon went away (a restart): rejoin and re-send the same pause_id.
        if (open_locked() != Status::kOk) throw Unavailable(last_error());
        request.run_id = settings_.run_id;
        backoff = std::chrono::milliseconds(50);
      }
      const std::int64_t id = next_id_++;
      const json result = request_locked(messages::pause_request(id, request), id, deadline);
      out.how = how_of(result.value("status", "timed_out"));
      if (out.how == PauseOutcome::How::kResumed) {
        if (kind == "checkpoint") {
          const json& r = result.contains("result") ? result["result"] : json();
          if (r.is_boolean()) out.result = r.get<bool>();
          out.reason = result.value("reason", "");
        } else if (result.contains("failure_reason") && result["failure_reason"].is_string() &&
                   !result["failure_reason"].get_ref<const std::string&>().empty()) {
          out.failure_reason = result["failure_reason"].get<std::string>();
        }
      } else if (kind == "checkpoint") {
        out.reason = "checkpoint " + result.value("status", std::string("timed_out"));
      }
      return Status::kOk;
    } catch (const Unavailable& e) {
      set_last_error(e.what());
      drop_locked();
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      sleep_for(std::max(std::chrono::milliseconds(0), std::min(backoff, left)));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
    } catch (const protocol::Error& e) {
      if (e.code() == protocol::ErrorCode::kTimeout) {
        out.how = PauseOutcome::How::kTimedOut;
        if (kind == "checkpoint") out.reason = "checkpoint timed_out";
        return Status::kOk;
      }
      set_last_error(std::string("lpd refused the pause: ") + e.what() + " [" +
                     std::string(protocol::to_string(e.code())) + "]");
      return Status::kError;
    }
  }
}

Status Shim::close() {
  const Mode mode = ensure_configured();
  if (mode != Mode::kEnabled) return Status::kDisabled;
  std::lock_guard lock(mu_);
  Status status = Status::kOk;
  if (conn_) {
    try {
      const std::int64_t id = next_id_++;
      request_locked(messages::run_end(id), id, Clock::now() + std::chrono::seconds(5));
    } catch (const std::exception& e) {
      set_last_error(e.what());
      status = Status::kUnavailable;
    }
  }
  drop_locked();
  mode_.store(Mode::kClosed);
  return status;
}

}  // namespace lpd::shim
