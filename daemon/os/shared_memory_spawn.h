#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstddef>

namespace lpd::daemon {

/// What a child does between its creation and its exec: plain pointers and
/// numbers the parent prepared, so the child allocates nothing, takes no
/// lock and writes nothing of the parent's but the error it reports.
struct ChildPlan {
  const char* executable = nullptr;  // the path execve runs
  char* const* argv = nullptr;       // null-terminated
  char* const* envp = nullptr;       // null-terminated: the whole environment
  const char* cwd = nullptr;         // entered after credentials are dropped
  int stdin_fd = -1;                 // made 0, 1, 2 of the child (dup2; kept when already there)
  int stdout_fd = -1;
  int stderr_fd = -1;
  int cgroup_procs_fd = -1;  // a cgroup.procs the child writes "0" to first; -1: none
  bool subreaper = false;    // PR_SET_CHILD_SUBREAPER (kept across exec)
  bool new_session = false;  // setsid()
  mode_t umask = 022;
  /// Descriptors from 3 up get close-on-exec (close_range); where the
  /// kernel refuses that, one fcntl per slot below this bound.
  unsigned long max_fds = 1024;
  bool drop_credentials = false;  // setgroups, setgid, setuid to these:
  uid_t uid = 0;
  gid_t gid = 0;
  const gid_t* groups = nullptr;
  std::size_t group_count = 0;
  sigset_t exec_mask{};  // the signal mask the command starts with
};

/// Starts `plan.executable` in a child that shares lpd's memory until its
/// exec: clone(CLONE_VM | CLONE_VFORK), as glibc's posix_spawn does, which
/// glibc's posix_spawn cannot be used for (credentials, umask, subreaper,
/// cgroup). A fork instead write-protects every page of lpd's heap, and
/// lpd then took a page fault for each page it wrote again: 3,300 faults
/// of 13-15 µs each on the CI VM per 10,000-test run, a quarter of lpd's
/// CPU per test (stop 38). The caller is suspended until the child execs
/// or exits. Every signal is blocked across the clone, so no handler of
/// lpd's ever runs on the shared memory; the child sets all dispositions
/// to the default, then `plan.exec_mask`, then execs.
///
/// Returns the child's pid (lpd must reap it). Throws std::system_error
/// with the errno of the clone, or of the first step of the child that
/// failed (the child has then exited with 127 and has been reaped).
pid_t spawn_sharing_memory(const ChildPlan& plan);

}  // namespace lpd::daemon
