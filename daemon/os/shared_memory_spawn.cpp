#include "daemon/os/shared_memory_spawn.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace lpd::daemon {
namespace {

/// The child's own stack: it must not run on lpd's, whose frames the
/// suspended parent still owns. Raw system calls need little.
constexpr std::size_t kChildStackBytes = 64 * 1024;

struct ChildOutcome {
  const ChildPlan* plan;
  int error;  // the child's errno when a step failed; 0 when it exec'd
};

/// glibc's set*id() wrappers tell every thread of the process to change
/// too (its setxid broadcast), through the parent's thread list, which the
/// child shares: a raw system call changes the child's credentials alone.
long raw(long number, long a = 0, long b = 0, long c = 0, long d = 0) { return ::syscall(number, a, b, c, d); }

bool put_fd(int from, int to) {
  if (from == to) return ::fcntl(to, F_SETFD, 0) == 0;  // kept across exec
  return ::dup2(from, to) == to;
}

bool mark_cloexec_from(int first, unsigned long max_fds) {
  if (raw(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return true;
  if (errno != ENOSYS && errno != EINVAL && errno != EPERM) return false;
  for (unsigned long fd = static_cast<unsigned long>(first); fd < max_fds; ++fd) {
    const int flags = ::fcntl(static_cast<int>(fd), F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC) && ::fcntl(static_cast<int>(fd), F_SETFD, flags | FD_CLOEXEC) != 0)
      return false;
  }
  return true;
}

/// The child, on its own stack, in lpd's memory. Not instrumented: ASan's
/// bookkeeping (its fake stacks, its allocator) is lpd's, and the child
/// must not touch it.
__attribute__((no_sanitize("address", "undefined"))) int child_main(void* arg) {
  auto* shared = static_cast<ChildOutcome*>(arg);
  const ChildPlan& p = *shared->plan;
  auto fail = [&]() -> int {
    shared->error = errno != 0 ? errno : EINVAL;
    raw(SYS_exit_group, 127);
    return 127;
  };
  // Every disposition back to the default (lpd ignores SIGPIPE; a command
  // must not inherit that), while every signal is still blocked.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigemptyset(&dfl.sa_mask);
  for (int signo = 1; signo < NSIG; ++signo) ::sigaction(signo, &dfl, nullptr);  // KILL, STOP: refused, fine
  // First, with lpd's rights (the cgroup is lpd's, not the user's): "0"
  // moves the writer, so nothing the command runs is ever outside it.
  if (p.cgroup_procs_fd >= 0 && ::write(p.cgroup_procs_fd, "0", 1) != 1) return fail();
  if (p.subreaper && raw(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1) != 0) return fail();
  if (p.new_session && ::setsid() < 0) return fail();
  ::umask(p.umask);
  if (!put_fd(p.stdin_fd, STDIN_FILENO) || !put_fd(p.stdout_fd, STDOUT_FILENO) ||
      !put_fd(p.stderr_fd, STDERR_FILENO))
    return fail();
  // The second wall behind close-on-exec everywhere in lpd: whatever lpd
  // holds (other users' connections, its log, pidfds) ends at exec.
  if (!mark_cloexec_from(3, p.max_fds)) return fail();
  if (p.drop_credentials) {
    // Groups first: after setuid they may no longer be changed.
    if (raw(SYS_setgroups, static_cast<long>(p.group_count), reinterpret_cast<long>(p.groups)) != 0) return fail();
    if (raw(SYS_setresgid, p.gid, p.gid, p.gid) != 0) return fail();
    if (raw(SYS_setresuid, p.uid, p.uid, p.uid) != 0) return fail();
  }
  // After dropping privileges: the directory is entered with the user's rights.
  if (::chdir(p.cwd) != 0) return fail();
  if (::sigprocmask(SIG_SETMASK, &p.exec_mask, nullptr) != 0) return fail();
  ::execve(p.executable, p.argv, p.envp);
  return fail();
}

}  // namespace

pid_t spawn_sharing_memory(const ChildPlan& plan) {
  void* stack = ::mmap(nullptr, kChildStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                       -1, 0);
  if (stack == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap of a child's stack");
  sigset_t all, before;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &before);
  ChildOutcome shared{&plan, 0};
  const pid_t pid = ::clone(child_main, static_cast<char*>(stack) + kChildStackBytes,
                            CLONE_VM | CLONE_VFORK | SIGCHLD, &shared);
  const int clone_error = errno;
  ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
  ::munmap(stack, kChildStackBytes);
  if (pid < 0) throw std::system_error(clone_error, std::generic_category(), "clone");
  if (shared.error != 0) {
    int ignored;
    while (::waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {
    }
    throw std::system_error(shared.error, std::generic_category(), "exec");
  }
  return pid;
}

}  // namespace lpd::daemon
