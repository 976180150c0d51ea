#include "daemon/host/file_lock.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>

namespace lpd::daemon {
namespace {

/// The pid a holder wrote in the lock file (record_pid), 0 when none.
pid_t recorded_pid(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  const auto pid = n > 0 ? static_cast<pid_t>(std::strtol(buf, nullptr, 10)) : 0;
  return pid > 0 ? pid : 0;
}

}  // namespace

std::optional<FileLock> FileLock::try_acquire(const std::string& path, pid_t* holder) {
  // Never through a link (planted in a shared directory, it would have us
  // truncate its target and write our pid there) nor into a FIFO (which
  // would block us in open).
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644));
  if (!fd) {
    const int err = errno;
    // ELOOP, or EACCES from O_CREAT on a link in a sticky directory: say why.
    struct stat link {};
    const bool is_link = ::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode);
    throw std::system_error(err, std::generic_category(),
                            "cannot open lock file " + path + (is_link ? " (it is a symbolic link)" : ""));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    throw std::runtime_error("lock file " + path + " is not a regular file; refusing to use it");
  // A record lock (fcntl), not flock: a flock belongs to the open file
  // description, which every child lpd forks shares until it closes its
  // copies (as_user's checks, the pause-dir agent) or execs (the launcher).
  // Such a child, not yet run on a loaded machine when lpd is SIGKILLed,
  // kept the lock, and the next `lpd start` said lpd was still running.
  // A record lock belongs to the process alone and is never inherited.
  struct flock whole {};
  whole.l_type = F_WRLCK;
  whole.l_whence = SEEK_SET;
  if (::fcntl(fd.get(), F_SETLK, &whole) != 0) {
    const int err = errno;
    if (holder) {
      struct flock held {};
      held.l_type = F_WRLCK;
      held.l_whence = SEEK_SET;
      *holder = ::fcntl(fd.get(), F_GETLK, &held) == 0 && held.l_type != F_UNLCK ? held.l_pid : 0;
      if (*holder <= 0) *holder = recorded_pid(fd.get());  // gone meanwhile, or another pid namespace
    }
    if (err == EAGAIN || err == EACCES) return std::nullopt;
    throw std::system_error(err, std::generic_category(), "cannot lock " + path);
  }
  // The pid the last holder wrote (it is gone: we hold the lock), before
  // ours replaces it.
  const pid_t previous = recorded_pid(fd.get());
  FileLock lock(std::move(fd));
  lock.previous_holder_ = previous;
  lock.record_pid(::getpid());
  return lock;
}

void FileLock::record_pid(pid_t pid) {
  const std::string text = std::to_string(pid) + "\n";
  if (::ftruncate(fd_.get(), 0) != 0) return;
  (void)!::pwrite(fd_.get(), text.data(), text.size(), 0);
}

}  // namespace lpd::daemon
