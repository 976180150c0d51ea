#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "shim/native/src/connection.h"

namespace lpd::shim {

enum class Status { kOk, kDisabled, kUnavailable, kError, kInvalidArgument };

/// How a pause ended, as the C ABI hands it out.
struct PauseOutcome {
  enum class How { kResumed, kTimedOut, kStale, kMock, kNotPaused };
  How how = How::kNotPaused;
  std::optional<bool> result;                 // checkpoint decision
  std::string reason;                         // checkpoint reason
  std::optional<std::string> failure_reason;  // failure pause: the external reason, if given
  std::string pause_id;
};

/// Settings read once from the environment (see lpd_shim.h).
struct Settings {
  std::string socket_path;  // empty: no daemon configured
  std::string run_id;
  std::string worker_id;
  std::optional<std::optional<bool>> checkpoint_mock;  // LPD_CHECKPOINT_MOCK=true|false|none
};
Settings settings_from_env();

/// Shim is the process's one link to lpd: the connection, the run it joined
/// and the test now running. One mutex serialises every use of the
/// connection; the mode is atomic so a disabled shim costs one load per call.
/// Errors are reported as a Status plus last_error() (thread-local text).
class Shim {
 public:
  static Shim& instance();

  /// Reads the environment on first use; connects if LPD_SOCKET is set.
  Status connect_from_env();
  /// Explicit path (empty: LPD_SOCKET, else the per-user default path).
  Status connect(std::string_view socket_path, std::string_view run_id);
  bool is_connected();
  std::string run_id();

  Status test_started(std::string_view nodeid);
  Status test_finished(std::string_view nodeid, std::string_view outcome, double duration, std::string_view message);
  Status checkpoint(std::string_view task, double timeout, PauseOutcome& out);
  /// pause_id empty: a new one; else the caller's (already validated), so
  /// that it could print it before this blocks (h18docs).
  Status pause_on_failure(std::optional<std::string_view> nodeid, std::string_view failure_text, double timeout,
                          PauseOutcome& out, std::string pause_id = {});
  Status close();

  /// The child of a fork() must not speak on its parent's connection.
  void disable_after_fork() { mode_.store(Mode::kForked); }

 private:
  enum class Mode { kUnconfigured, kDisabled, kEnabled, kClosed, kForked };
  using Clock = std::chrono::steady_clock;

  Shim() = default;
  /// The mode after reading the environment on first use.
  Mode ensure_configured();
  Status open_locked();  // connect + hello + run.register; throws nothing
  bool reconnect_if_due_locked();
  void drop_locked();
  Status notify(std::string line);
  Status pause(std::string_view kind, std::string nodeid, std::string_view task, std::string_view original_failure,
               double timeout, PauseOutcome& out, std::string pause_id = {});
  nlohmann::json request_locked(const std::string& line, std::int64_t id, std::optional<Clock::time_point> deadline);

  std::atomic<Mode> mode_{Mode::kUnconfigured};
  std::mutex mu_;
  Settings settings_;
  std::unique_ptr<Connection> conn_;
  std::int64_t next_id_ = 1;
  std::string current_nodeid_;
  Clock::time_point last_attempt_{};
  unsigned sent_since_drain_ = 0;
};

/// Text of the last error on this thread.
const std::string& last_error();
void set_last_error(std::string text);

}  // namespace lpd::shim
