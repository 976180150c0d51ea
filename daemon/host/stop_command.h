#pragma once

#include <chrono>
#include <string>

namespace lpd::daemon {

/// Runs `lpd stop`: asks the lpd serving `socket_path` who it is (op
/// `status`: pid, uid), checks the caller may stop it (decide_stop), then
/// sends it SIGTERM through a pidfd, which takes the daemon's own shutdown
/// path (Daemon::request_stop, as `systemctl stop` and Ctrl-C do), and waits
/// on that pidfd until the process is gone or `timeout` passes. Runs and
/// helper servers it supervised keep running, for the next lpd to take back.
/// Prints what happened on stdout, or why not on stderr, and returns one of
/// the kStopExit* codes of daemon/host/stop_rules.h. Throws nothing.
int stop_daemon(const std::string& socket_path, std::chrono::milliseconds timeout);

}  // namespace lpd::daemon
