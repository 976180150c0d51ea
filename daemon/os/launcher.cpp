#include "daemon/os/launcher.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>

#include <boost/process/v2/environment.hpp>
#include <boost/process/v2/posix/default_launcher.hpp>
#include <boost/process/v2/process.hpp>
#include <spdlog/spdlog.h>

#include "daemon/os/cgroup.h"
#include "daemon/os/pidfd_watch.h"
#include "daemon/os/proc_stat.h"
#include "daemon/core/resource_shortage.h"
#include "daemon/core/unique_fd.h"
#include "protocol/error.h"

namespace lpd::daemon {
namespace {

namespace bp2 = boost::process::v2;
using protocol::Error;
using protocol::ErrorCode;

constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";

/// The error a failed launch answers with: `unavailable` when lpd ran
/// short of descriptors, memory or processes (try again later),
/// `permission_denied` / `not_found` for what the request asked, else
/// `internal`.
Error launch_error(const std::string& what, int error) {
  if (is_resource_shortage(error)) return Error(ErrorCode::kUnavailable, what + ": " + describe_shortage(error));
  const auto code = error == EACCES || error == EPERM ? ErrorCode::kPermissionDenied
                    : error == ENOENT                 ? ErrorCode::kNotFound
                                                      : ErrorCode::kInternal;
  return Error(code, what + ": " + std::strerror(error));
}

/// The shortage that just made a call fail, found out afresh because
/// libraries report it as a consequence (EBADF for the -1 they got): the
/// errno of opening one descriptor now, or 0 when that works.
int shortage_now() {
  const UniqueFd probe(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  return probe ? 0 : errno;
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  // AT_EACCESS: by the effective ids, which is who asks when a check runs as
  // a user (check_as) with lpd's real ids kept.
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::faccessat(AT_FDCWD, path.c_str(), X_OK, AT_EACCESS) == 0;
}

/// Runs in the child between fork and exec, so it sticks to
/// async-signal-safe calls and reports failure through errno.
struct ChildSetup {
  const LaunchSpec& spec;
  int null_fd;
  rlim_t max_fds;  // RLIMIT_NOFILE's soft limit, read in the parent (lpd raises it to the hard one)
  int cgroup_procs_fd;  // the new cgroup's cgroup.procs, -1: none (then a subreaper when contain_tree)

  static boost::system::error_code last_error() { return {errno, boost::system::system_category()}; }

  /// Sets FD_CLOEXEC on every descriptor from `first` on. close_range
  /// (Linux 5.11) does it in one call; before that, or where a seccomp
  /// filter refuses it, one fcntl per slot up to the descriptor limit
  /// `max_fds` (read before fork: getrlimit is not on the
  /// async-signal-safe list).
  static bool mark_cloexec_from(int first, rlim_t max_fds) {
    if (::close_range(static_cast<unsigned>(first), ~0U, CLOSE_RANGE_CLOEXEC) == 0) return true;
    if (errno != ENOSYS && errno != EINVAL && errno != EPERM) return false;
    for (rlim_t fd = static_cast<rlim_t>(first); fd < max_fds; ++fd) {
      const int flags = ::fcntl(static_cast<int>(fd), F_GETFD);
      if (flags >= 0 && !(flags & FD_CLOEXEC) && ::fcntl(static_cast<int>(fd), F_SETFD, flags | FD_CLOEXEC) != 0)
        return false;
    }
    return true;
  }

  static bool move_fd(int from, int to) {
    if (from == to) return ::fcntl(to, F_SETFD, 0) == 0;  // keep it across exec
    return ::dup2(from, to) == to;
  }

  template <typename Launcher>
  boost::system::error_code on_exec_setup(Launcher&, const bp2::filesystem::path&, const char* const*&) {
    // First, with lpd's rights (the cgroup is lpd's, not the user's):
    // "0" moves the writer. Failing that the command does not start, rather
    // than run outside its cgroup with nobody the wiser.
    if (cgroup_procs_fd >= 0 && ::write(cgroup_procs_fd, "0", 1) != 1) return last_error();
    if (cgroup_procs_fd < 0 && spec.contain_tree && ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
      return last_error();
    if (spec.new_session && ::setsid() < 0) return last_error();
    sigset_t blocked;
    ::sigemptyset(&blocked);
    for (int signo : spec.blocked_signals) ::sigaddset(&blocked, signo);
    ::sigprocmask(SIG_SETMASK, &blocked, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    for (int signo = 1; signo < NSIG; ++signo) ::sigaction(signo, &dfl, nullptr);  // KILL/STOP just fail
    ::umask(022);  // lpd's own umask (066) keeps its state private; a command gets the usual one
    if (!move_fd(null_fd, STDIN_FILENO)) return last_error();
    if (!move_fd(spec.stdout_fd >= 0 ? spec.stdout_fd : null_fd, STDOUT_FILENO)) return last_error();
    if (!move_fd(spec.stderr_fd >= 0 ? spec.stderr_fd : null_fd, STDERR_FILENO)) return last_error();
    // The second wall behind close-on-exec everywhere in lpd: whatever lpd
    // holds (other users' connections, its log, pidfds) ends at exec, so
    // the command starts with exactly stdin, stdout and stderr. CLOEXEC
    // rather than closing: bp2 reports a failed exec through a pipe that
    // must stay open until then.
    if (!mark_cloexec_from(3, max_fds)) return last_error();
    if (spec.credentials) {
      const auto& c = *spec.credentials;
      // Groups first: after setuid we may no longer change them.
      if (::setgroups(c.groups.size(), c.groups.data()) != 0) return last_error();
      if (::setgid(c.gid) != 0) return last_error();
      if (::setuid(c.uid) != 0) return last_error();
    }
    // After dropping privileges, so the directory is entered with the
    // user's own rights.
    if (::chdir(spec.cwd.c_str()) != 0) return last_error();
    return {};
  }

  /// bp2 1.81 checks for a five-argument overload but calls four; accept
  /// both. _exit skips atexit handlers and sanitizer reports of lpd's heap
  /// in a child that never became the command.
  template <typename... Args>
  void on_exec_error(Args&&...) {
    ::_exit(127);
  }
};

}  // namespace

std::string resolve_executable(const std::string& command, const std::vector<std::string>& env,
                               const std::string& cwd) {
  if (command.empty()) throw Error(ErrorCode::kBadRequest, "the command is empty");
  if (command.find('/') != std::string::npos) {
    const std::string path = command.front() == '/' ? command : cwd + "/" + command;
    if (!is_executable_file(path)) {
      throw Error(ErrorCode::kNotFound, "command not found: " + command +
                                            (::faccessat(AT_FDCWD, path.c_str(), F_OK, AT_EACCESS) == 0 ? " (not an executable file)" : ""));
    }
    return path;
  }
  std::string search_path = kDefaultPath;
  for (const auto& entry : env)
    if (entry.rfind("PATH=", 0) == 0) search_path = entry.substr(5);
  // Our own walk rather than bp2's find_executable: bp2 asks access(),
  // which answers for the real uid, and a check as a user keeps lpd's.
  std::string found;
  std::size_t start = 0;
  // At most kMaxPathEntries directories: a PATH of a million entries must
  // not cost lpd (or a check as a user it waits for) a million stat()s.
  constexpr int kMaxPathEntries = 256;
  for (int entries = 0; found.empty() && start <= search_path.size() && entries < kMaxPathEntries; ++entries) {
    const auto colon = search_path.find(':', start);
    std::string dir = search_path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (dir.empty()) dir = ".";  // an empty PATH entry means the current directory, as in a shell
    const std::string candidate = (dir.front() == '/' ? dir : cwd + "/" + dir) + "/" + command;
    if (is_executable_file(candidate)) found = candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (found.empty()) throw Error(ErrorCode::kNotFound, "command not found: " + command + " (PATH=" + search_path + ")");
  return found;
}

SystemProcessLauncher::SystemProcessLauncher(boost::asio::io_context& io) : io_(io) {
  const CgroupBase& base = supervision_cgroup_base();
  if (base.usable())
    spdlog::info("process trees: cgroups under {} (one per helper and per run)", base.dir);
  else
    spdlog::info("process trees: no cgroup ({}); each helper and each run's monitor is the subreaper of its "
                 "descendants",
                 base.why_not);
}

Launched SystemProcessLauncher::launch(const LaunchSpec& spec) {
  if (spec.argv.empty()) throw Error(ErrorCode::kBadRequest, "no command given");
  if (spec.cwd.empty() || spec.cwd.front() != '/')
    throw Error(ErrorCode::kBadRequest, "the working directory must be an absolute path");
  struct stat st {};
  if (::stat(spec.cwd.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw Error(ErrorCode::kNotFound, "working directory " + spec.cwd + " does not exist");
  if (spec.credentials && ::geteuid() != 0 && spec.credentials->uid != ::geteuid())
    throw Error(ErrorCode::kPermissionDenied, "lpd does not run as root and cannot start commands as uid " +
                                                  std::to_string(spec.credentials->uid));
  const std::string executable = resolve_executable(spec.argv.front(), spec.env, spec.cwd);

  std::vector<const char*> argv;
  for (const auto& arg : spec.argv) argv.push_back(arg.c_str());
  argv.push_back(nullptr);
  std::vector<const char*> envp;
  for (const auto& entry : spec.env) envp.push_back(entry.c_str());
  envp.push_back(nullptr);

  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null_fd) throw launch_error("cannot open /dev/null", errno);
  rlimit fd_limit{};
  const rlim_t max_fds = ::getrlimit(RLIMIT_NOFILE, &fd_limit) == 0 ? fd_limit.rlim_cur : 1024;

  // The tree's cgroup, made before the fork so the child joins it before
  // it execs: nothing it runs is ever outside.
  std::optional<NewCgroup> cgroup;
  const CgroupBase& cgroup_base = supervision_cgroup_base();
  if (spec.contain_tree && cgroup_base.usable()) {
    remove_empty_cgroups(cgroup_base);  // what ended since the last launch
    cgroup = make_launch_cgroup(cgroup_base);
    if (!cgroup) throw launch_error("cannot create a cgroup for the command in " + cgroup_base.dir, errno);
  }
  // Closed when the launch is over, whatever happens: the child has its own copy until exec.
  const UniqueFd cgroup_fd(cgroup ? cgroup->procs_fd : -1);
  auto drop_cgroup = [&cgroup] {
    if (cgroup) ::rmdir(cgroup->dir.c_str());
  };

  bp2::posix::default_launcher launcher;
  launcher.env = envp.data();
  boost::system::error_code ec;
  std::optional<bp2::process> started;
  try {
    started.emplace(launcher(io_.get_executor(), ec, bp2::filesystem::path(executable), argv.data(),
                             ChildSetup{spec, null_fd.get(), max_fds, cgroup ? cgroup->procs_fd : -1}));
  } catch (const std::exception& e) {
    // bp2 throws after the exec when it cannot open its own pidfd of the
    // child (EMFILE): the command runs and nobody would watch it.
    null_fd.reset();
    const int error = shortage_now();
    if (launcher.pid > 0) {
      if (spec.new_session) ::kill(-launcher.pid, SIGKILL);
      ::kill(launcher.pid, SIGKILL);
      int ignored;
      ::waitpid(launcher.pid, &ignored, 0);
    }
    drop_cgroup();
    if (error != 0) throw launch_error("started " + executable + " but cannot watch it; stopped it again", error);
    throw Error(ErrorCode::kInternal, "cannot start " + executable + ": " + e.what());
  }
  auto& process = *started;
  null_fd.reset();
  if (ec) {
    // The child reported its errno through bp2's pipe and exited; reap it.
    if (launcher.pid > 0) {
      int ignored;
      ::waitpid(launcher.pid, &ignored, 0);
    }
    drop_cgroup();
    throw launch_error("cannot start " + executable, ec.value());
  }
  Launched launched;
  launched.pid = process.id();
  launched.executable = executable;
  if (cgroup) launched.cgroup_dir = cgroup->dir;
  // Our own pidfd: the child is not reaped yet, so the pid cannot have been reused.
  UniqueFd pidfd(open_process_fd(launched.pid));
  int watch_error = pidfd ? 0 : errno;
  if (auto stat = read_proc_stat(launched.pid))
    launched.start_time = stat->start_time;
  else if (watch_error == 0)
    watch_error = errno;
  if (watch_error != 0) {
    // Started but impossible to watch or to tell from a later process with
    // its pid: lpd could never say when it ends. Stop it (still our
    // unreaped child, so its pid and group are its own) rather than leave
    // it running unsupervised; bp2's destructor reaps it.
    pidfd.reset();
    if (cgroup) kill_cgroup(cgroup->dir);
    if (spec.new_session) ::kill(-launched.pid, SIGKILL);
    throw launch_error("started " + executable + " but cannot watch it; stopped it again", watch_error);
  }
  process.detach();  // bp2's destructor would SIGKILL a running child
  launched.pidfd = pidfd.release();
  return launched;
}

}  // namespace lpd::daemon
