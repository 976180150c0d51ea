#include "daemon/os/launcher.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>

#include <spdlog/spdlog.h>

#include "daemon/os/cgroup.h"
#include "daemon/os/pidfd_watch.h"
#include "daemon/os/proc_stat.h"
#include "daemon/os/shared_memory_spawn.h"
#include "daemon/core/resource_shortage.h"
#include "daemon/core/unique_fd.h"
#include "protocol/error.h"

namespace lpd::daemon {
namespace {

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

bool is_executable_file(const std::string& path) {
  struct stat st {};
  // AT_EACCESS: by the effective ids, which is who asks when a check runs as
  // a user (check_as) with lpd's real ids kept.
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::faccessat(AT_FDCWD, path.c_str(), X_OK, AT_EACCESS) == 0;
}

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
  // Our own walk rather than Boost.Process's find_executable: it asks
  // access(), which answers for the real uid, and a check as a user keeps lpd's.
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

SystemProcessLauncher::SystemProcessLauncher() {
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

  // The tree's cgroup, made before the spawn so the child joins it before
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

  ChildPlan plan;
  plan.executable = executable.c_str();
  plan.argv = const_cast<char* const*>(argv.data());
  plan.envp = const_cast<char* const*>(envp.data());
  plan.cwd = spec.cwd.c_str();
  plan.stdin_fd = null_fd.get();
  plan.stdout_fd = spec.stdout_fd >= 0 ? spec.stdout_fd : null_fd.get();
  plan.stderr_fd = spec.stderr_fd >= 0 ? spec.stderr_fd : null_fd.get();
  plan.cgroup_procs_fd = cgroup_fd.get();
  plan.subreaper = !cgroup && spec.contain_tree;
  plan.new_session = spec.new_session;
  plan.umask = 022;  // lpd's own umask (066) keeps its state private; a command gets the usual one
  plan.max_fds = max_fds;
  if (spec.credentials) {
    plan.drop_credentials = true;
    plan.uid = spec.credentials->uid;
    plan.gid = spec.credentials->gid;
    plan.groups = spec.credentials->groups.data();
    plan.group_count = spec.credentials->groups.size();
  }
  ::sigemptyset(&plan.exec_mask);
  for (int signo : spec.blocked_signals) ::sigaddset(&plan.exec_mask, signo);
  pid_t pid = -1;
  try {
    pid = spawn_sharing_memory(plan);
  } catch (const std::system_error& e) {
    // The clone failed, or the child reported its errno and has been reaped.
    null_fd.reset();
    drop_cgroup();
    throw launch_error("cannot start " + executable, e.code().value());
  }
  null_fd.reset();
  Launched launched;
  launched.pid = pid;
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
    // it running unsupervised, and reap it.
    pidfd.reset();
    if (cgroup) kill_cgroup(cgroup->dir);
    if (spec.new_session) ::kill(-launched.pid, SIGKILL);
    ::kill(launched.pid, SIGKILL);
    int ignored;
    while (::waitpid(launched.pid, &ignored, 0) < 0 && errno == EINTR) {
    }
    throw launch_error("started " + executable + " but cannot watch it; stopped it again", watch_error);
  }
  launched.pidfd = pidfd.release();
  return launched;
}

}  // namespace lpd::daemon
