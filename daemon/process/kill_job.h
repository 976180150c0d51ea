#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace lpd::daemon {

/// KillJob stops a supervised process and everything it started: it finds
/// every process in the leader's session (the leader called setsid), holds
/// a pidfd for each so a reused pid can never be hit, sends the signal to
/// each and to the process group, sends SIGKILL to what is left after the
/// grace period, and reports once every member is gone. Each wait is a
/// pidfd or a timer in the event loop.
class KillJob : public std::enable_shared_from_this<KillJob> {
 public:
  struct Result {
    bool forced = false;  // SIGKILL was needed
    std::size_t members = 0;
  };
  using OnDone = std::function<void(const Result&)>;

  /// The caller has checked that `leader` is still the process it started
  /// (pid and start time), so its session id is its own pid.
  KillJob(boost::asio::io_context& io, pid_t leader, int signo, std::chrono::milliseconds grace);

  void start(OnDone on_done);
  /// Sends the signal again (a second kill request with another signal).
  void resignal(int signo);

 private:
  void collect_members();
  void watch(pid_t pid, int pidfd);
  void signal_all(int signo);
  void member_gone(pid_t pid);

  boost::asio::io_context& io_;
  pid_t leader_;
  int signo_;
  std::chrono::milliseconds grace_;
  boost::asio::steady_timer grace_timer_;
  std::map<pid_t, std::shared_ptr<boost::asio::posix::stream_descriptor>> members_;
  std::size_t members_seen_ = 0;
  bool forced_ = false;
  bool done_ = false;
  OnDone on_done_;
};

}  // namespace lpd::daemon
