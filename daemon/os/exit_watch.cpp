#include "daemon/os/exit_watch.h"

#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "daemon/core/backoff.h"
#include "daemon/os/pidfd_watch.h"

namespace lpd::daemon {

std::chrono::milliseconds watch_retry_delay(unsigned failures) {
  return doubling_delay(failures, std::chrono::milliseconds(50), std::chrono::milliseconds(2000));
}

ExitWatch::ExitWatch(boost::asio::io_context& io, pid_t pid, std::uint64_t start_time, bool own_child,
                     OnExit on_exit)
    : io_(io),
      pid_(pid),
      start_time_(start_time),
      own_child_(own_child),
      descriptor_(io),
      retry_(io),
      on_exit_(std::move(on_exit)) {}

std::shared_ptr<ExitWatch> ExitWatch::child(boost::asio::io_context& io, int pidfd, OnExit on_exit) {
  auto watch = std::make_shared<ExitWatch>(io, 0, 0, /*own_child=*/true, std::move(on_exit));
  watch->wait_on(pidfd);
  return watch;
}

std::shared_ptr<ExitWatch> ExitWatch::adopt(boost::asio::io_context& io, int pidfd, OnExit on_exit) {
  auto watch = std::make_shared<ExitWatch>(io, 0, 0, /*own_child=*/false, std::move(on_exit));
  watch->wait_on(pidfd);
  return watch;
}

std::shared_ptr<ExitWatch> ExitWatch::start(boost::asio::io_context& io, pid_t pid, std::uint64_t start_time,
                                            OnExit on_exit) {
  auto watch = std::make_shared<ExitWatch>(io, pid, start_time, /*own_child=*/false, std::move(on_exit));
  watch->try_watch();
  return watch;
}

void ExitWatch::try_watch() {
  if (!on_exit_) return;
  auto pinned = pin_process(pid_, start_time_);
  switch (pinned.liveness) {
    case Liveness::kAlive:
      if (failures_ > 0) spdlog::info("watching pid {} again after {} failed attempt(s)", pid_, failures_);
      failures_ = 0;
      wait_on(pinned.pidfd.release());
      return;
    case Liveness::kGone:
    case Liveness::kReused:
      post_fire();
      return;
    case Liveness::kUnknown:
      retry_later(pinned.error);
      return;
  }
}

void ExitWatch::wait_on(int pidfd) {
  descriptor_.assign(pidfd);
  // A child's watch holds itself until the child is reaped; any other
  // watch lives only as long as its owner holds it.
  async_wait_for_end(descriptor_, [weak = weak_from_this(), keep = own_child_ ? shared_from_this() : nullptr](
                                      boost::system::error_code ec) {
    auto self = weak.lock();
    if (!ec && self) self->fire();
  });
}

void ExitWatch::retry_later(int error) {
  ++failures_;
  const auto delay = watch_retry_delay(failures_);
  // Said once per outage, not at every attempt: a long one must not flood the log.
  if (failures_ == 1)
    spdlog::warn("cannot watch pid {} ({}); not taking that for its exit, trying again in {} ms", pid_,
                 std::strerror(error), delay.count());
  retry_.expires_after(delay);
  retry_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (!ec && self) self->try_watch();
  });
}

void ExitWatch::post_fire() {
  boost::asio::post(io_, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->fire();
  });
}

void ExitWatch::fire() {
  if (!on_exit_) return;
  auto callback = std::move(on_exit_);
  on_exit_ = nullptr;
  // The callback may drop the last other reference to this watch.
  auto keep_alive = shared_from_this();
  callback(reap());
}

ExitStatus ExitWatch::reap() {
  ExitStatus status;
  if (!own_child_ || !descriptor_.is_open()) return status;
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(descriptor_.native_handle()), &info,
                  WEXITED | WNOHANG);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0 || info.si_pid == 0) return status;
  if (info.si_code == CLD_EXITED) {
    status.exit_code = info.si_status;
  } else {
    status.signal = info.si_status;
  }
  return status;
}

void ExitWatch::cancel() {
  on_exit_ = nullptr;
  boost::system::error_code ignored;
  descriptor_.close(ignored);
  retry_.cancel();
}

}  // namespace lpd::daemon
