#include "daemon/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>

namespace lpd::daemon {

std::optional<FileLock> FileLock::try_acquire(const std::string& path, pid_t* holder) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot open lock file " + path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (holder) {
      char buf[32] = {};
      ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
      *holder = n > 0 ? static_cast<pid_t>(std::strtol(buf, nullptr, 10)) : 0;
    }
    ::close(fd);
    if (err == EWOULDBLOCK) return std::nullopt;
    throw std::system_error(err, std::generic_category(), "cannot lock " + path);
  }
  FileLock lock(fd);
  lock.record_pid(::getpid());
  return lock;
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

void FileLock::record_pid(pid_t pid) {
  const std::string text = std::to_string(pid) + "\n";
  if (::ftruncate(fd_, 0) != 0) return;
  (void)!::pwrite(fd_, text.data(), text.size(), 0);
}

}  // namespace lpd::daemon
