#include "daemon/process/launcher.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include <boost/process/v2/environment.hpp>
#include <boost/process/v2/posix/default_launcher.hpp>
#include <boost/process/v2/process.hpp>

#include "daemon/process/pidfd_watch.h"
#include "daemon/process/proc_stat.h"
#include "protocol/error.h"

namespace lpd::daemon {
namespace {

namespace bp2 = boost::process::v2;
using protocol::Error;
using protocol::ErrorCode;

constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

/// Runs in the child between fork and exec, so it sticks to
/// async-signal-safe calls and reports failure through errno.
struct ChildSetup {
  const LaunchSpec& spec;
  int null_fd;

  static boost::system::error_code last_error() { return {errno, boost::system::system_category()}; }

  static bool move_fd(int from, int to) {
    if (from == to) return ::fcntl(to, F_SETFD, 0) == 0;  // keep it across exec
    return ::dup2(from, to) == to;
  }

  template <typename Launcher>
  boost::system::error_code on_exec_setup(Launcher&, const bp2::filesystem::path&, const char* const*&) {
    if (spec.new_session && ::setsid() < 0) return last_error();
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    for (int signo = 1; signo < NSIG; ++signo) ::sigaction(signo, &dfl, nullptr);  // KILL/STOP just fail
    if (!move_fd(null_fd, STDIN_FILENO)) return last_error();
    if (!move_fd(spec.stdout_fd >= 0 ? spec.stdout_fd : null_fd, STDOUT_FILENO)) return last_error();
    if (!move_fd(spec.stderr_fd >= 0 ? spec.stderr_fd : null_fd, STDERR_FILENO)) return last_error();
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
                                            (::access(path.c_str(), F_OK) == 0 ? " (not an executable file)" : ""));
    }
    return path;
  }
  std::string search_path = kDefaultPath;
  for (const auto& entry : env)
    if (entry.rfind("PATH=", 0) == 0) search_path = entry.substr(5);
  std::vector<bp2::environment::key_value_pair> lookup;
  lookup.emplace_back(bp2::environment::key("PATH"), bp2::environment::value(search_path));
  const auto found = bp2::environment::find_executable(command, lookup);
  if (found.empty()) throw Error(ErrorCode::kNotFound, "command not found: " + command + " (PATH=" + search_path + ")");
  return found.string();
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

  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) throw Error(ErrorCode::kInternal, std::string("cannot open /dev/null: ") + std::strerror(errno));

  bp2::posix::default_launcher launcher;
  launcher.env = envp.data();
  boost::system::error_code ec;
  auto process = launcher(io_.get_executor(), ec, bp2::filesystem::path(executable), argv.data(),
                          ChildSetup{spec, null_fd});
  ::close(null_fd);
  if (ec) {
    // The child reported its errno through bp2's pipe and exited; reap it.
    if (launcher.pid > 0) {
      int ignored;
      ::waitpid(launcher.pid, &ignored, 0);
    }
    const auto code = ec.value() == EACCES || ec.value() == EPERM ? ErrorCode::kPermissionDenied
                      : ec.value() == ENOENT                      ? ErrorCode::kNotFound
                                                                  : ErrorCode::kInternal;
    throw Error(code, "cannot start " + executable + ": " + ec.message());
  }
  Launched launched;
  launched.pid = process.id();
  launched.executable = executable;
  // Our own pidfd: the child is not reaped yet, so the pid cannot have been reused.
  launched.pidfd = open_process_fd(launched.pid);
  if (auto stat = read_proc_stat(launched.pid)) launched.start_time = stat->start_time;
  process.detach();  // bp2's destructor would SIGKILL a running child
  return launched;
}

}  // namespace lpd::daemon
