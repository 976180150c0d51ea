// lpd-monitor: the smallest, longest-lived process of a supervised run.
//
// lpd starts one monitor per attempt of `lpctl run`. The monitor starts the
// command in its own process group with stdout/stderr appended to the run's
// log, stays its parent, and when it ends writes its wait status to a file
// (write temp, fsync, rename). lpd can therefore be killed and restarted
// mid-run without losing the run, its output or its exit status: the next
// lpd re-adopts the monitor by pid and reads the status file when it exits.
//
// Signals: SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to the monitor are
// forwarded to the command's process group; SIGUSR2 kills that group with
// SIGKILL (lpd's "grace period over"). The monitor itself outlives both.
//
// Usage: lpd-monitor --status FILE --log FILE -- COMMAND [ARGS...]
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t g_child_group = 0;

void forward_signal(int signo) {
  const pid_t group = g_child_group;
  if (group > 0) ::kill(-group, signo == SIGUSR2 ? SIGKILL : signo);
}

double now_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

/// Replaces `path` atomically with `text`.
bool write_atomically(const std::string& path, const std::string& text) {
  const std::string temp = path + ".new";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return false;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  return ::rename(temp.c_str(), path.c_str()) == 0;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

int usage() {
  std::fprintf(stderr, "usage: lpd-monitor --status FILE --log FILE -- COMMAND [ARGS...]\n");
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  std::string status_path, log_path;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--status" && i + 1 < argc) {
      status_path = argv[++i];
    } else if (arg == "--log" && i + 1 < argc) {
      log_path = argv[++i];
    } else if (arg == "--") {
      ++i;
      break;
    } else {
      return usage();
    }
  }
  if (status_path.empty() || log_path.empty() || i >= argc) return usage();
  std::vector<char*> command(argv + i, argv + argc);
  command.push_back(nullptr);

  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    std::fprintf(stderr, "lpd-monitor: cannot open %s: %s\n", log_path.c_str(), std::strerror(errno));
    return 1;
  }

  struct sigaction forward {};
  forward.sa_handler = forward_signal;
  sigemptyset(&forward.sa_mask);
  for (int signo : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR2}) ::sigaction(signo, &forward, nullptr);

  const double started_at = now_seconds();
  const pid_t child = ::fork();
  if (child < 0) {
    std::fprintf(stderr, "lpd-monitor: fork: %s\n", std::strerror(errno));
    return 1;
  }
  if (child == 0) {
    ::setpgid(0, 0);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int signo = 1; signo < NSIG; ++signo) ::sigaction(signo, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execvp(command[0], command.data());
    const int err = errno;
    dprintf(STDERR_FILENO, "lpd-monitor: cannot run %s: %s\n", command[0], std::strerror(err));
    ::_exit(err == ENOENT ? 127 : 126);
  }
  ::setpgid(child, child);  // both sides, so no signal can race the child's own setpgid
  g_child_group = child;
  write_atomically(status_path, "{\"state\":\"running\",\"pid\":" + std::to_string(child) +
                                    ",\"monitor_pid\":" + std::to_string(::getpid()) +
                                    ",\"started_at\":" + std::to_string(started_at) + "}\n");

  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) {
      std::fprintf(stderr, "lpd-monitor: waitpid: %s\n", std::strerror(errno));
      return 1;
    }
  }
  std::string result = "{\"state\":\"exited\",\"pid\":" + std::to_string(child) +
                       ",\"started_at\":" + std::to_string(started_at) +
                       ",\"ended_at\":" + std::to_string(now_seconds());
  if (WIFSIGNALED(status))
    result += ",\"signal\":" + std::to_string(WTERMSIG(status)) + ",\"exit_code\":null";
  else
    result += ",\"signal\":null,\"exit_code\":" + std::to_string(WEXITSTATUS(status));
  result += ",\"command\":" + json_string(command[0]) + "}\n";
  if (!write_atomically(status_path, result)) {
    std::fprintf(stderr, "lpd-monitor: cannot write %s: %s\n", status_path.c_str(), std::strerror(errno));
    return 1;
  }
  return 0;
}
