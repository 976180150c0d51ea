#include "daemon/jobs/console_echo.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

#include "daemon/os/exit_watch.h"
#include "daemon/os/pidfd_watch.h"

namespace lpd::daemon {

std::shared_ptr<ConsoleEcho> ConsoleEcho::make(boost::asio::io_context& io, UniqueFd fd,
                                               std::optional<Credentials> who) {
  if (!fd) return nullptr;
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || (flags & O_ACCMODE) == O_RDONLY) return nullptr;
  // Our copy must not reach any child lpd starts later (the writers get it
  // through fork, which keeps it).
  ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);
  return std::make_shared<ConsoleEcho>(io, std::move(fd), std::move(who));
}

void ConsoleEcho::write(std::string_view bytes) {
  if (failed_ || total_ >= kMaxBytes) return;
  bytes = bytes.substr(0, kMaxBytes - total_);
  total_ += bytes.size();
  pending_.append(bytes);
  if (writing_) return;
  writing_ = true;
  // After this event: faulthandler writes a traceback in many small
  // pieces, and the ones already read join the same writer.
  boost::asio::post(io_, [self = shared_from_this()] { self->start_writer(); });
}

void ConsoleEcho::start_writer() {
  if (pending_.empty()) {
    writing_ = false;
    return;
  }
  const std::string text = std::move(pending_);
  pending_.clear();
  const pid_t pid = ::fork();
  if (pid < 0) {
    spdlog::warn("cannot echo a traceback to the test's console: fork: {}", std::strerror(errno));
    failed_ = true;
    writing_ = false;
    return;
  }
  if (pid == 0) {
    // The child: the user's identity in full (it only writes to their
    // descriptor), a deadline, then exit without running lpd's destructors.
    close_inherited_descriptors(fd_.get());  // not lpd's lock, sockets or journals
    signal(SIGALRM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    sigaddset(&set, SIGPIPE);
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    if (who_ && ::geteuid() == 0) {
      if (::setgroups(who_->groups.size(), who_->groups.data()) != 0 ||
          ::setresgid(who_->gid, who_->gid, who_->gid) != 0 || ::setresuid(who_->uid, who_->uid, who_->uid) != 0)
        ::_exit(1);
    }
    ::alarm(kTimeoutSeconds);
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd_.get(), text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        // A non-blocking descriptor that is full: wait for room, within the deadline.
        fd_set out;
        FD_ZERO(&out);
        if (fd_.get() >= FD_SETSIZE) ::_exit(1);
        FD_SET(fd_.get(), &out);
        ::select(fd_.get() + 1, nullptr, &out, nullptr, nullptr);
        continue;
      }
      if (n <= 0) ::_exit(1);
      done += static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  const int pidfd = open_process_fd(pid);
  if (pidfd < 0) {
    // Out of descriptors: lpd cannot learn of its end without waiting, so
    // it is stopped and reaped at once, and the echo given up.
    ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    failed_ = true;
    writing_ = false;
    return;
  }
  // The watch keeps itself (and so this echo) alive until the child is reaped.
  ExitWatch::child(io_, pidfd, [self = shared_from_this()](const ExitStatus&) { self->start_writer(); });
}

}  // namespace lpd::daemon
