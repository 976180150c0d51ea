#pragma once

#include <functional>
#include <memory>

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

namespace lpd::daemon {

/// ExitWatch calls back once when a process ends, by waiting for its pidfd
/// to become readable in the event loop: no polling, works for processes
/// lpd did not spawn (a shim, a re-adopted server). It does not reap.
class ExitWatch : public std::enable_shared_from_this<ExitWatch> {
 public:
  /// Starts watching. When the pid is already gone the callback is posted
  /// to run soon, so callers handle both cases the same way.
  static std::shared_ptr<ExitWatch> start(boost::asio::io_context& io, pid_t pid, std::function<void()> on_exit);

  ExitWatch(boost::asio::io_context& io, int pidfd, std::function<void()> on_exit);
  /// The callback will not run after this.
  void cancel();
  int pidfd() { return descriptor_.is_open() ? descriptor_.native_handle() : -1; }

 private:
  boost::asio::posix::stream_descriptor descriptor_;
  std::function<void()> on_exit_;
};

}  // namespace lpd::daemon
