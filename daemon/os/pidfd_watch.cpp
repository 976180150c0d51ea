#include "daemon/os/pidfd_watch.h"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace lpd::daemon {

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
  UniqueFd fd(pid > 0 ? open_process_fd(pid) : -1);
  if (!fd) {
    // pidfd_open says EINVAL for pid 0: no process has it.
    pinned.error = pid > 0 ? errno : ESRCH;
    pinned.liveness = is_no_such_process(pinned.error) ? Liveness::kGone : Liveness::kUnknown;
    return pinned;
  }
  const auto stat = read_proc_stat(pid);
  pinned.error = stat ? 0 : errno;
  pinned.liveness = judge_liveness(stat, pinned.error, start_time);
  if (pinned.liveness == Liveness::kAlive) {
    pinned.pidfd = std::move(fd);
    pinned.start_time = stat->start_time;
  }
  return pinned;
}

bool signal_process_fd(int pidfd, int signo) {
  return ::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0) == 0;
}

}  // namespace lpd::daemon
