#include "daemon/host/stop_command.h"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>
#include <optional>

#include "client/connection.h"
#include "daemon/host/stop_rules.h"
#include "daemon/core/unique_fd.h"
#include "protocol/error.h"

namespace lpd::daemon {
namespace {

using Clock = std::chrono::steady_clock;

/// Whether the daemon still answers on `connection` (ping).
bool still_answers(client::Connection& connection) {
  try {
    connection.request("ping");
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

/// Waits until the process behind `pidfd` has exited (the pidfd turns
/// readable) or `deadline` passes; true when it exited.
bool wait_for_exit(int pidfd, Clock::time_point deadline) {
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd waiter{pidfd, POLLIN, 0};
    const int n = ::poll(&waiter, 1, static_cast<int>(std::min<long long>(left, 1LL << 30)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

}  // namespace

int stop_daemon(const std::string& socket_path, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::optional<client::Connection> connection;
  nlohmann::json status;
  try {
    connection.emplace(client::Connection::open(socket_path, std::min(timeout, std::chrono::milliseconds(5000))));
    status = connection->request("status");
  } catch (const client::DaemonUnreachable& e) {
    // "Not running" only when nothing is there; a socket another user
    // serves, or a daemon that does not answer (stopped), is not that.
    if (e.nobody_there()) {
      std::cerr << "lpd: not running: " << e.what() << "; nothing to stop\n";
      return kStopExitNotRunning;
    }
    std::cerr << "lpd: cannot stop it: " << e.what() << "\n";
    return kStopExitFailed;
  } catch (const std::exception& e) {
    std::cerr << "lpd: cannot ask the lpd on " << socket_path << " who it is: " << e.what() << "\n";
    return kStopExitFailed;
  }
  const auto decision = decide_stop(status, ::geteuid(), socket_path);
  if (!decision.allowed) {
    std::cerr << "lpd: " << decision.refusal << "\n";
    return kStopExitFailed;
  }
  const std::string who = "lpd (pid " + std::to_string(decision.pid) + ") on " + socket_path;
  if (const auto unwritten = status.find("unwritten_crash_records");
      unwritten != status.end() && unwritten->is_object() && unwritten->value("count", 0) > 0) {
    // Said here, not only in lpd.log: the user stopping it can still free
    // space first (lpd writes them within a second of it returning).
    // lpd tries them once more as it stops, from the blocks it holds in
    // reserve (SpaceReserve), and often succeeds: "lost" would be false
    // then; its log says which could not be written.
    std::cerr << "lpd: warning: " << unwritten->value("count", 0)
              << " crash record(s) are only in lpd's memory (" << unwritten->value("cause", std::string("not written"))
              << "); lpd tries them once more as it stops, and its log says any it could not write, which are lost "
                 "with this stop; to be sure of them, free space in "
              << status.value("state_dir", std::string("its state directory"))
              << " and stop it after they are written\n";
  }

  // The pid came from the daemon; a pidfd pins that process. It is the
  // daemon's only if the daemon still answers once the pidfd is open (had
  // it died in between, its connection would be closed and the pid might
  // be another process's by now).
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, decision.pid, 0)));
  const int open_error = pidfd ? 0 : errno;
  if (!still_answers(*connection)) {
    std::cout << who << " stopped meanwhile\n";
    return kStopExitStopped;
  }
  if (!pidfd) {
    std::cerr << "lpd: cannot watch " << who << ": pidfd_open: " << std::strerror(open_error)
              << (open_error == ESRCH ? " (it runs in another PID namespace?)" : "") << "\n";
    return kStopExitFailed;
  }
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGTERM, nullptr, 0) != 0) {
    const int err = errno;
    if (err == ESRCH) {
      std::cout << who << " stopped meanwhile\n";
      return kStopExitStopped;
    }
    std::cerr << "lpd: cannot signal " << who << ": " << std::strerror(err)
              << (err == EPERM ? " (only its user or root may stop it)" : "") << "\n";
    return kStopExitFailed;
  }
  connection.reset();  // lpd closes every session as it stops; nothing more to ask
  const auto active_runs = status.contains("counts") ? status["counts"].value("active_runs", 0) : 0;
  if (!wait_for_exit(pidfd.get(), deadline)) {
    std::cerr << "lpd: " << who << " is still running " << timeout.count() / 1000.0
              << " s after SIGTERM; see " << status.value("state_dir", std::string("its state directory"))
              << "/lpd.log\n";
    return kStopExitFailed;
  }
  std::cout << who << " stopped\n";
  // What it leaves behind is by design (Daemon::request_stop): say so.
  std::cout << "runs and helper servers it supervised";
  if (active_runs > 0) std::cout << " (" << active_runs << " active run(s))";
  std::cout << " keep running; the next `lpd start` takes them back\n";
  return kStopExitStopped;
}

}  // namespace lpd::daemon
