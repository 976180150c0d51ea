#include "daemon/os/pidfd_watch.h"

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace lpd::daemon {

PidfdWatch::PidfdWatch(boost::asio::io_context& io, int pidfd, bool own_child)
    : descriptor_(io, pidfd), own_child_(own_child) {}

void PidfdWatch::async_wait(OnExit on_exit) {
  on_exit_ = std::move(on_exit);
  async_wait_for_end(descriptor_, [self = shared_from_this()](boost::system::error_code ec) {
    if (ec || !self->on_exit_) return;
    auto callback = std::move(self->on_exit_);
    self->on_exit_ = nullptr;
    callback(self->collect());
  });
}

void PidfdWatch::cancel() {
  on_exit_ = nullptr;
  boost::system::error_code ignored;
  descriptor_.cancel(ignored);
}

ExitStatus PidfdWatch::collect() {
  ExitStatus status;
  if (!own_child_) return status;
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(descriptor_.native_handle()), &info,
                  WEXITED | WNOHANG);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0 || info.si_pid == 0) return status;
  status.known = true;
  if (info.si_code == CLD_EXITED) {
    status.code = info.si_status;
  } else {
    status.signal = info.si_status;
  }
  return status;
}

bool process_has_ended(int pidfd) {
  pollfd ended{pidfd, POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&ended, 1, 0);
  } while (ready < 0 && errno == EINTR);
  return ready > 0;
}

int open_process_fd(pid_t pid) {
  // pidfds are always close-on-exec.
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

PinnedProcess pin_process(pid_t pid, std::uint64_t start_time) {
  PinnedProcess pinned;
  const int fd = pid > 0 ? open_process_fd(pid) : -1;
  if (fd < 0) {
    // pidfd_open says EINVAL for pid 0: no process has it.
    pinned.error = pid > 0 ? errno : ESRCH;
    pinned.liveness = is_no_such_process(pinned.error) ? Liveness::kGone : Liveness::kUnknown;
    return pinned;
  }
  const auto stat = read_proc_stat(pid);
  pinned.error = stat ? 0 : errno;
  pinned.liveness = judge_liveness(stat, pinned.error, start_time);
  if (pinned.liveness == Liveness::kAlive) {
    pinned.pidfd = fd;
    pinned.start_time = stat->start_time;
  } else {
    ::close(fd);
  }
  return pinned;
}

bool signal_process_fd(int pidfd, int signo) {
  return ::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0) == 0;
}

}  // namespace lpd::daemon
