#pragma once

#include <string>

#include <sys/types.h>

#include <nlohmann/json.hpp>

namespace lpd::daemon {

/// Exit codes of `lpd stop` (listed in its --help).
inline constexpr int kStopExitStopped = 0;     // the daemon is gone
inline constexpr int kStopExitFailed = 1;      // refused, or still running after --timeout
inline constexpr int kStopExitNotRunning = 2;  // no lpd answered on the socket (as lpctl's 2)

/// What `lpd stop` may do with the daemon that answered `status`.
struct StopDecision {
  bool allowed = false;
  pid_t pid = 0;
  /// Why not, in one sentence naming the daemon (empty when allowed).
  std::string refusal;
};

/// Decides from the daemon's `status` reply whether `caller_uid` may stop
/// it, as kill(2) decides for a signal: root, or the daemon's own user. A
/// daemon started by systemd's lpd.socket is refused for everyone, since
/// systemd would start it again on the next connection: the refusal names
/// the systemctl command instead. A reply without a usable pid or uid (an
/// lpd too old or a hostile server) is refused. No I/O.
StopDecision decide_stop(const nlohmann::json& status, uid_t caller_uid, const std::string& socket_path);

}  // namespace lpd::daemon
