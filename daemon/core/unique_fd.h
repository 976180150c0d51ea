#pragma once

#include <unistd.h>

#include <utility>

namespace lpd::daemon {

/// UniqueFd owns one file descriptor and closes it when it goes, so an early
/// return or an exception cannot leak it. -1 means "none". Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  /// Gives the descriptor away; the caller closes it.
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

/// In a child forked without exec (as_user's checks, the console echo):
/// closes every descriptor from 3 on except `keep`. Such a child would
/// otherwise hold lpd's lock files and sockets: killed lpd could not be
/// restarted ("already running") until the child ended, and a client would
/// not see EOF. close_range(2) where the kernel has it, else one by one.
void close_inherited_descriptors(int keep);

}  // namespace lpd::daemon
