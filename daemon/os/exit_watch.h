#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/os/exit_status.h"

namespace lpd::daemon {

/// How long an ExitWatch waits before its next attempt after `failures`
/// attempts in a row could not look at the process (EMFILE and friends):
/// 50 ms doubling to 2 s. A reaction to an error, not polling: a watch that
/// got its pidfd waits on it alone.
std::chrono::milliseconds watch_retry_delay(unsigned failures);

/// ExitWatch calls back once when a process ends, from the event loop, by
/// waiting for its pidfd to become readable (async_wait_for_end): no
/// polling, no SIGCHLD handler. Three ways in, one mechanism:
///
/// - child(): lpd's own child. The watch reaps it with waitid(P_PIDFD),
///   which yields the real ExitStatus and leaves no zombie, and keeps itself
///   alive until then (a child nobody reaps would stay a zombie). It never
///   reaps anything else (no waitpid(-1)).
/// - adopt(): a pidfd of a process lpd did not start (or started in an
///   earlier lifetime), opened and checked by the caller (pin_process).
/// - start(): a process known by pid and start time (a shim, a re-adopted
///   server): the watch pins it itself. When lpd cannot look (no descriptor
///   for pidfd_open or /proc), that is no answer: the watch logs it and
///   tries again after watch_retry_delay.
///
/// The callback means a confirmed end: the pidfd became readable and says
/// so (process_has_ended), or the kernel said there is no such process, or
/// the pid now belongs to a process with another start time. Only a child
/// watch knows how it ended; the others pass an unknown ExitStatus. An
/// adopted or started watch lives as long as its owner holds it: dropping
/// it is cancelling it.
class ExitWatch : public std::enable_shared_from_this<ExitWatch> {
 public:
  using OnExit = std::function<void(const ExitStatus&)>;

  /// Watches and reaps lpd's own child through `pidfd` (the watch owns it).
  static std::shared_ptr<ExitWatch> child(boost::asio::io_context& io, int pidfd, OnExit on_exit);
  /// Watches through a pidfd the caller already opened and checked (see
  /// pin_process); the watch owns it from now on. Does not reap.
  static std::shared_ptr<ExitWatch> adopt(boost::asio::io_context& io, int pidfd, OnExit on_exit);
  /// Starts watching `pid`; `start_time` (0: not known) tells it from a
  /// later process with the same pid. When it is already gone the callback
  /// is posted to run soon, so callers handle both cases the same way.
  static std::shared_ptr<ExitWatch> start(boost::asio::io_context& io, pid_t pid, std::uint64_t start_time,
                                          OnExit on_exit);
  static std::shared_ptr<ExitWatch> start(boost::asio::io_context& io, pid_t pid, OnExit on_exit) {
    return start(io, pid, 0, std::move(on_exit));
  }

  ExitWatch(boost::asio::io_context& io, pid_t pid, std::uint64_t start_time, bool own_child, OnExit on_exit);
  /// The callback will not run after this.
  void cancel();
  /// The pidfd waited on, -1 while there is none (before a retry, after cancel).
  int pidfd() { return descriptor_.is_open() ? descriptor_.native_handle() : -1; }
  /// Attempts in a row that could not look at the process (0 once watching).
  unsigned failures() const { return failures_; }

 private:
  void try_watch();
  void wait_on(int pidfd);
  void retry_later(int error);
  void post_fire();
  void fire();
  ExitStatus reap();

  boost::asio::io_context& io_;
  pid_t pid_;
  std::uint64_t start_time_;
  bool own_child_;
  boost::asio::posix::stream_descriptor descriptor_;
  boost::asio::steady_timer retry_;
  unsigned failures_ = 0;
  OnExit on_exit_;
};

}  // namespace lpd::daemon
