#include "daemon/exit_watch.h"

#include "daemon/process/pidfd_watch.h"

#include <boost/asio/post.hpp>

namespace lpd::daemon {

ExitWatch::ExitWatch(boost::asio::io_context& io, int pidfd, std::function<void()> on_exit)
    : descriptor_(io), on_exit_(std::move(on_exit)) {
  if (pidfd >= 0) descriptor_.assign(pidfd);
}

std::shared_ptr<ExitWatch> ExitWatch::start(boost::asio::io_context& io, pid_t pid, std::function<void()> on_exit) {
  const int fd = pid > 0 ? open_process_fd(pid) : -1;
  auto watch = std::make_shared<ExitWatch>(io, fd, std::move(on_exit));
  std::weak_ptr<ExitWatch> weak = watch;
  auto fire = [weak] {
    auto self = weak.lock();
    if (!self || !self->on_exit_) return;
    auto callback = std::move(self->on_exit_);
    self->on_exit_ = nullptr;
    callback();
  };
  if (fd < 0) {
    boost::asio::post(io, fire);
  } else {
    watch->descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                                  [fire](boost::system::error_code ec) {
                                    if (!ec) fire();
                                  });
  }
  return watch;
}

void ExitWatch::cancel() {
  on_exit_ = nullptr;
  boost::system::error_code ignored;
  descriptor_.close(ignored);
}

}  // namespace lpd::daemon
