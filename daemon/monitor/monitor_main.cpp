// lpd-monitor: the smallest, longest-lived process of a supervised run.
//
// lpd starts one monitor per attempt of `lpctl run`. The monitor starts the
// command in its own process group with stdout/stderr going to the run's
// log (the monitor's own stdout/stderr, set up by lpd), stays its parent,
// and when it ends writes its wait status to a file (write temp, fsync,
// rename). lpd can therefore be killed and restarted mid-run without losing
// the run, its output or its exit status: the next lpd re-adopts the
// monitor by pid and reads the status file when it exits.
//
// Identity: a root lpd starts the monitor as root and the monitor drops to
// the run's user (--uid/--gid/--groups) only in the command's process. So
// the status file lives in a directory of lpd's that the run's user cannot
// write: nothing the command does can plant a link or a FIFO where lpd
// reads, nor forge the exit status (s6's supervise does the same split).
//
// Signals: SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to the monitor are
// forwarded to the command's process group; SIGUSR2 kills that group with
// SIGKILL (lpd's "grace period over"), and the command's whole cgroup when
// it has one. The monitor itself outlives both.
//
// The whole tree: the monitor is the child subreaper of everything the
// command starts (PR_SET_CHILD_SUBREAPER), so a setsid'd or double-forked
// descendant is re-parented to the monitor, not to init. With
// --cgroup-base DIR (lpd could make cgroups) the command also runs in a
// cgroup of its own, DIR/t<monitor pid>-1, which it cannot leave. When
// the command ends, whatever it left running is stopped, recorded (pid,
// argv, start time and the pytest test it started in, in the status file's
// "left_running") and killed, and the monitor
// reaps until it has no child: nothing of the run outlives the run.
//
// Environment: the monitor itself runs with the fixed environment lpd gives
// it. The command's environment (the user's, with the shim's variables)
// comes in --env-file, read and removed at start and applied only in the
// command's process after it became the user: a root monitor must never
// run under a user's LD_PRELOAD or LD_LIBRARY_PATH.
//
// Terminal: with --pty COLSxROWS the command's stdout
// and stderr are a pseudo-terminal of that size (its stdin stays
// /dev/null), so a test runner keeps its colours and line buffering, as in
// the terminal of the `lpctl run` that asked; a thread copies what it
// writes to the monitor's stdout (the run's log) until every holder of
// the terminal is gone. Output processing is off (no "\r\n" in the log).
//
// Usage: lpd-monitor --status FILE [--cwd DIR] [--env-file FILE] [--uid U
//        --gid G [--groups G1,G2,...]] [--cgroup-base DIR] [--pty COLSxROWS]
//        -- COMMAND [ARGS...]
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "daemon/core/unique_fd.h"
#include "daemon/os/cgroup.h"
#include "daemon/os/descendants.h"
#include "daemon/os/leftover_test.h"

namespace {

using lpd::daemon::UniqueFd;

volatile sig_atomic_t g_child_group = 0;
volatile sig_atomic_t g_cgroup_kill_fd = -1;  // the command's cgroup.kill, -1: none

void forward_signal(int signo) {
  const pid_t group = g_child_group;
  if (group > 0) ::kill(-group, signo == SIGUSR2 ? SIGKILL : signo);
  // pwrite is async-signal-safe: the whole cgroup, setsid'd members too.
  if (signo == SIGUSR2 && g_cgroup_kill_fd >= 0) (void)!::pwrite(g_cgroup_kill_fd, "1", 1, 0);
}

double now_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

/// (full disk) Writes `text` over the "running" status file
/// already at `path`, inside the block that file holds: on a full disk the
/// temp file of write_atomically gets no block, and the exit status would
/// be lost. Not atomic, but lpd reads the final status only once the
/// monitor has exited. False (errno set) when even that fails.
bool overwrite_in_place(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return false;
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::pwrite(fd.get(), text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : EIO;
      fd.reset();
      errno = error;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  const bool ok = ::ftruncate(fd.get(), static_cast<off_t>(text.size())) == 0 && ::fsync(fd.get()) == 0;
  const int error = errno;
  fd.reset();
  errno = error;
  return ok;
}

/// Replaces `path` atomically with `text`.
bool write_atomically(const std::string& path, const std::string& text) {
  const std::string temp = path + ".new";
  ::unlink(temp.c_str());
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return false;
  const char* p = text.data();
  std::size_t left = text.size();
  // A write that fails (a full disk) leaves no half-made file behind: the
  // caller then overwrites the status in place, and nothing else reads it.
  const auto give_up = [&] {
    const int error = errno;
    fd.reset();
    ::unlink(temp.c_str());
    errno = error;
    return false;
  };
  while (left > 0) {
    ssize_t n = ::write(fd.get(), p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = EIO;
    if (n <= 0) return give_up();
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::fsync(fd.get());
  fd.reset();
  if (::rename(temp.c_str(), path.c_str()) != 0) return give_up();
  return true;
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
  std::fprintf(stderr,
               "usage: lpd-monitor --status FILE [--cwd DIR] [--env-file FILE] [--uid U --gid G [--groups G1,G2,...]] "
               "[--cgroup-base DIR] [--pty COLSxROWS] -- "
               "COMMAND "
               "[ARGS...]\n");
  return 64;
}

/// Reads the NUL-separated "K=V" entries of `path` (written by lpd, 0600,
/// in its own directory) and removes the file. False when unreadable.
bool read_env_file(const std::string& path, std::vector<std::string>* out) {
  constexpr std::size_t kMaxBytes = 16 * 1024 * 1024;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return false;
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > kMaxBytes) break;
  }
  fd.reset();
  ::unlink(path.c_str());
  if (text.size() > kMaxBytes) return false;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\0', start);
    const std::string entry = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (entry.find('=') != std::string::npos) out->push_back(entry);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return true;
}

/// Parses a decimal id; false for anything else.
bool parse_id(const char* text, unsigned* out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long value = std::strtoul(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value > 0xfffffffeUL) return false;
  *out = static_cast<unsigned>(value);
  return true;
}

/// Who the command runs as; unset fields mean "as the monitor itself".
struct Identity {
  bool set = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

bool parse_groups(const std::string& list, std::vector<gid_t>* out) {
  std::size_t start = 0;
  while (start <= list.size() && !list.empty()) {
    const auto comma = list.find(',', start);
    const std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    unsigned id = 0;
    if (!parse_id(item.c_str(), &id)) return false;
    out->push_back(static_cast<gid_t>(id));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return true;
}

/// In the command's child, before exec: only the descriptors it is meant to
/// have (0, 1, 2) survive, whatever the monitor inherited.
void close_other_descriptors() {
  if (::syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
  const long max = ::sysconf(_SC_OPEN_MAX);
  for (long fd = 3; fd < (max > 0 ? max : 65536); ++fd) ::close(static_cast<int>(fd));
}

/// In the command's child: becomes the run's user for good, then enters the
/// working directory with that user's rights. Returns 0 or an errno value.
int become(const Identity& who, const std::string& cwd) {
  if (who.set) {
    if (::setgroups(who.groups.size(), who.groups.data()) != 0) return errno;
    if (::setgid(who.gid) != 0) return errno;
    if (::setuid(who.uid) != 0) return errno;
  }
  if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) return errno;
  return 0;
}

}  // namespace

namespace {

/// The command's cgroup, made before the fork (BASE/t<monitor pid>-1).
/// Empty `dir` when none could be made: the monitor is still the
/// subreaper of the whole tree.
struct CommandCgroup {
  std::string dir;
  int procs_fd = -1;
  int kill_fd = -1;
};

CommandCgroup make_command_cgroup(const std::string& base_dir) {
  CommandCgroup made;
  if (base_dir.empty()) return made;
  lpd::daemon::CgroupBase base;
  base.dir = base_dir;
  auto cgroup = lpd::daemon::make_launch_cgroup(base);
  if (!cgroup) {
    std::fprintf(stderr, "lpd-monitor: cannot create a cgroup in %s (%s); the run's tree is followed by ppid only\n",
                 base_dir.c_str(), std::strerror(errno));
    return made;
  }
  made.dir = cgroup->dir;
  made.procs_fd = cgroup->procs_fd;
  // cgroup.kill exists from Linux 5.14; before, the sweep's SIGKILLs do it.
  made.kill_fd = ::open((made.dir + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  return made;
}

// -- the test each leftover started in ----------------------------

/// The clocks a leftover's start time is turned into wall-clock time with.
struct StartClock {
  long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  double boot_now = 0;
  double real_now = 0;
};

StartClock read_start_clock() {
  StartClock clock;
  timespec boot{}, real{};
  ::clock_gettime(CLOCK_BOOTTIME, &boot);  // what /proc/PID/stat's start time counts
  ::clock_gettime(CLOCK_REALTIME, &real);
  clock.boot_now = static_cast<double>(boot.tv_sec) + static_cast<double>(boot.tv_nsec) / 1e9;
  clock.real_now = static_cast<double>(real.tv_sec) + static_cast<double>(real.tv_nsec) / 1e9;
  return clock;
}

/// The status file's "left_running" (the first kMaxLeftoversDescribed,
/// "left_running_count" says how many there were) and
/// "left_running_tests" (each nodeid once; an entry's "test" is its index).
/// An entry names a test only when its PYTEST_CURRENT_TEST is pytest's
/// and is not `inherited`, the value the command itself was started with
/// (lpctl run called from inside a test: that outer test started nothing).
/// lpd reads at most 64 KiB of the status file: entries stop at kBudget.
std::string left_running_fields(const std::vector<lpd::daemon::Leftover>& leftovers,
                                const std::optional<std::string>& inherited, const StartClock& clock) {
  constexpr std::size_t kBudget = 48 * 1024;
  std::string entries, tests;
  std::vector<std::string> nodeids;
  std::size_t listed = 0;
  for (const auto& l : leftovers) {
    if (++listed > lpd::daemon::kMaxLeftoversDescribed) break;
    const double started_at =
        lpd::daemon::start_wall_time(l.start_time, clock.ticks_per_second, clock.boot_now, clock.real_now);
    std::string entry = "{\"pid\":" + std::to_string(l.pid) + ",\"argv\":" + json_string(l.argv) +
                        ",\"started_at\":" + std::to_string(started_at);
    std::string new_test;  // a nodeid the table does not hold yet
    if (l.pytest_current_test && l.pytest_current_test != inherited) {
      if (auto test = lpd::daemon::parse_pytest_current_test(*l.pytest_current_test)) {
        const auto it = std::find(nodeids.begin(), nodeids.end(), test->nodeid);
        entry += ",\"test\":" + std::to_string(it - nodeids.begin()) + ",\"phase\":" + json_string(test->phase);
        if (it == nodeids.end()) new_test = std::move(test->nodeid);
      }
    }
    entry += "}";
    const std::string table_entry = new_test.empty() ? "" : (nodeids.empty() ? "" : ",") + json_string(new_test);
    if (entries.size() + tests.size() + entry.size() + table_entry.size() + 1 >= kBudget) break;
    if (!new_test.empty()) nodeids.push_back(std::move(new_test));
    entries += (entries.empty() ? "" : ",") + entry;
    tests += table_entry;
  }
  return ",\"left_running\":[" + entries + "],\"left_running_tests\":[" + tests +
         "],\"left_running_count\":" + std::to_string(leftovers.size());
}

// -- the command on a pseudo-terminal ---------------------

/// Parses "COLSxROWS" (each 1..10000); false for anything else.
bool parse_terminal_size(const std::string& text, winsize* out) {
  const auto x = text.find('x');
  if (x == std::string::npos) return false;
  unsigned cols = 0, rows = 0;
  if (!parse_id(text.substr(0, x).c_str(), &cols) || !parse_id(text.substr(x + 1).c_str(), &rows)) return false;
  if (cols < 1 || cols > 10000 || rows < 1 || rows > 10000) return false;
  *out = winsize{};
  out->ws_col = static_cast<unsigned short>(cols);
  out->ws_row = static_cast<unsigned short>(rows);
  return true;
}

/// A new pseudo-terminal of `size`, output processing off: the master (kept
/// by the monitor) and the slave (the command's stdout and stderr), both
/// close-on-exec (the child dup2s the slave onto 1 and 2). False, errno set.
bool open_terminal(const winsize& size, int* master, int* slave) {
  UniqueFd owned_master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!owned_master) return false;
  char name[128];
  if (::grantpt(owned_master.get()) != 0 || ::unlockpt(owned_master.get()) != 0 ||
      ::ptsname_r(owned_master.get(), name, sizeof name) != 0) {
    const int error = errno;
    owned_master.reset();
    errno = error;
    return false;
  }
  *slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*slave < 0) {
    const int error = errno;
    owned_master.reset();
    errno = error;
    return false;
  }
  *master = owned_master.release();
  termios mode{};
  if (::tcgetattr(*slave, &mode) == 0) {
    mode.c_oflag &= ~static_cast<tcflag_t>(OPOST);  // "\n" stays "\n" in the log
    ::tcsetattr(*slave, TCSANOW, &mode);
  }
  ::ioctl(*master, TIOCSWINSZ, &size);
  return true;
}

/// Copies the terminal's output to the monitor's stdout (the run's log)
/// on a thread of its own, until every holder of the slave has closed it
/// (read gives EIO, after what was written: Linux hands the master the
/// buffered bytes first).
class TerminalCopy {
 public:
  explicit TerminalCopy(int master) : master_(master) {
    // The thread takes no signal: they stay the main thread's (forwarding,
    // the waitpid loop).
    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    thread_ = std::thread([this] { run(); });
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  ~TerminalCopy() {
    if (thread_.joinable()) thread_.detach();  // an early return of main: the process ends now
  }
  TerminalCopy(const TerminalCopy&) = delete;
  TerminalCopy& operator=(const TerminalCopy&) = delete;

  /// Waits until the copy is over, at most `limit` (something outside the
  /// run may hold the terminal open: the monitor still ends, and the
  /// thread with it). True when it was over.
  bool wait(std::chrono::seconds limit) {
    std::unique_lock lock(mutex_);
    const bool over = done_cv_.wait_for(lock, limit, [this] { return done_; });
    if (over) {
      lock.unlock();
      thread_.join();
    } else {
      thread_.detach();
    }
    return over;
  }

 private:
  void run() {
    char buffer[65536];
    for (;;) {
      const ssize_t n = ::read(master_, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // EIO: no one holds the terminal any more
      for (ssize_t done = 0; done < n;) {
        const ssize_t w = ::write(STDOUT_FILENO, buffer + done, static_cast<std::size_t>(n - done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;  // the log refuses (full disk): what follows is lost, the run goes on
        done += w;
      }
    }
    std::lock_guard lock(mutex_);
    done_ = true;
    done_cv_.notify_all();
  }

  int master_;
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string status_path, cwd, env_file, cgroup_base;
  Identity who;
  bool has_uid = false, has_gid = false;
  bool use_terminal = false;  // --pty
  winsize terminal_size{};
  int i = 1;
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    unsigned id = 0;
    if (arg == "--status" && i + 1 < argc) {
      status_path = argv[++i];
    } else if (arg == "--cwd" && i + 1 < argc) {
      cwd = argv[++i];
    } else if (arg == "--env-file" && i + 1 < argc) {
      env_file = argv[++i];
    } else if (arg == "--cgroup-base" && i + 1 < argc) {
      cgroup_base = argv[++i];
    } else if (arg == "--pty" && i + 1 < argc && parse_terminal_size(argv[i + 1], &terminal_size)) {
      use_terminal = true;
      ++i;
    } else if (arg == "--uid" && i + 1 < argc && parse_id(argv[i + 1], &id)) {
      who.uid = static_cast<uid_t>(id);
      has_uid = true;
      ++i;
    } else if (arg == "--gid" && i + 1 < argc && parse_id(argv[i + 1], &id)) {
      who.gid = static_cast<gid_t>(id);
      has_gid = true;
      ++i;
    } else if (arg == "--groups" && i + 1 < argc && parse_groups(argv[i + 1], &who.groups)) {
      ++i;
    } else if (arg == "--") {
      ++i;
      break;
    } else {
      return usage();
    }
  }
  if (status_path.empty() || i >= argc || has_uid != has_gid) return usage();
  who.set = has_uid;
  if (who.set && who.groups.empty()) who.groups.push_back(who.gid);
  std::vector<char*> command(argv + i, argv + argc);
  command.push_back(nullptr);
  std::vector<std::string> command_env;
  if (!env_file.empty() && !read_env_file(env_file, &command_env)) {
    std::fprintf(stderr, "lpd-monitor: cannot read %s: %s\n", env_file.c_str(), std::strerror(errno));
    return 1;
  }
  std::vector<char*> command_envp;
  for (auto& entry : command_env) command_envp.push_back(entry.data());
  // a leftover whose PYTEST_CURRENT_TEST is this one got it from
  // outside the run, not from a test of it.
  std::optional<std::string> inherited_test;
  if (env_file.empty()) {
    if (const char* value = std::getenv("PYTEST_CURRENT_TEST")) inherited_test = value;
  } else {
    for (const auto& entry : command_env)
      if (entry.rfind("PYTEST_CURRENT_TEST=", 0) == 0) {
        inherited_test = entry.substr(std::strlen("PYTEST_CURRENT_TEST="));
        break;
      }
  }
  command_envp.push_back(nullptr);

  // Blocked until there is a command to forward them to (lpd starts the
  // monitor with them blocked already): one that comes sooner is pending,
  // not lost, and is forwarded as soon as the command's group exists.
  sigset_t forwarded;
  sigemptyset(&forwarded);
  for (int signo : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR2}) sigaddset(&forwarded, signo);
  ::sigprocmask(SIG_BLOCK, &forwarded, nullptr);
  struct sigaction forward {};
  forward.sa_handler = forward_signal;
  sigemptyset(&forward.sa_mask);
  for (int signo : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR2}) ::sigaction(signo, &forward, nullptr);

  // Orphans of the command come to us, not to init: the whole tree stays
  // below the monitor, whatever setsid or double fork it does.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    std::fprintf(stderr, "lpd-monitor: cannot become a child subreaper: %s\n", std::strerror(errno));
  CommandCgroup cgroup = make_command_cgroup(cgroup_base);
  g_cgroup_kill_fd = cgroup.kill_fd;

  // the terminal, made before the fork (the child only dup2s).
  int terminal_master = -1, terminal_slave = -1;
  if (use_terminal && !open_terminal(terminal_size, &terminal_master, &terminal_slave)) {
    std::fprintf(stderr, "lpd-monitor: cannot open a pseudo-terminal (%s); the command writes to the log directly\n",
                 std::strerror(errno));
    terminal_master = terminal_slave = -1;
  }
  // The terminal is the run's user's, as a login's is (a root monitor's
  // grantpt gave it to root): `tty`, `stty` and ttyname() work as that user.
  if (terminal_slave >= 0 && who.set && ::fchown(terminal_slave, who.uid, static_cast<gid_t>(-1)) != 0)
    std::fprintf(stderr, "lpd-monitor: cannot hand the terminal to uid %u: %s\n", static_cast<unsigned>(who.uid),
                 std::strerror(errno));

  const double started_at = now_seconds();
  const pid_t child = ::fork();
  if (child < 0) {
    std::fprintf(stderr, "lpd-monitor: fork: %s\n", std::strerror(errno));
    return 1;
  }
  if (child == 0) {
    // Into the cgroup first, as the monitor (the user may not write there).
    if (cgroup.procs_fd >= 0 && ::write(cgroup.procs_fd, "0", 1) != 1) {
      dprintf(STDERR_FILENO, "lpd-monitor: cannot enter cgroup %s: %s\n", cgroup.dir.c_str(), std::strerror(errno));
      ::_exit(126);
    }
    ::setpgid(0, 0);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int signo = 1; signo < NSIG; ++signo) ::sigaction(signo, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    if (terminal_slave >= 0) {  // stdout and stderr on the terminal
      ::dup2(terminal_slave, STDOUT_FILENO);
      ::dup2(terminal_slave, STDERR_FILENO);
    }
    close_other_descriptors();  // stdout and stderr are the run's log, or its terminal
    if (const int err = become(who, cwd)) {
      dprintf(STDERR_FILENO, "lpd-monitor: cannot start %s as uid %u in %s: %s\n", command[0],
              static_cast<unsigned>(who.set ? who.uid : ::getuid()), cwd.empty() ? "." : cwd.c_str(),
              std::strerror(err));
      ::_exit(126);
    }
    // After becoming the user: execvp searches the PATH of `environ`.
    if (!env_file.empty()) environ = command_envp.data();
    ::execvp(command[0], command.data());
    const int err = errno;
    dprintf(STDERR_FILENO, "lpd-monitor: cannot run %s: %s\n", command[0], std::strerror(err));
    ::_exit(err == ENOENT ? 127 : 126);
  }
  ::setpgid(child, child);  // both sides, so no signal can race the child's own setpgid
  g_child_group = child;
  ::sigprocmask(SIG_UNBLOCK, &forwarded, nullptr);  // a stop already pending is forwarded now
  // the command's tree holds the terminal now; the copy ends when it lets go.
  std::optional<TerminalCopy> terminal_copy;
  if (terminal_master >= 0) {
    // Raw descriptors up to here: the forked child used them until exec, when no destructor runs.
    ::close(terminal_slave);
    terminal_copy.emplace(terminal_master);
  }
  if (cgroup.procs_fd >= 0) ::close(cgroup.procs_fd);
  write_atomically(status_path, "{\"state\":\"running\",\"pid\":" + std::to_string(child) +
                                    ",\"monitor_pid\":" + std::to_string(::getpid()) +
                                    ",\"started_at\":" + std::to_string(started_at) + "}\n");

  // Reaps every child, adopted orphans included (they would stay zombies
  // otherwise), until the command itself has ended.
  int status = 0;
  for (;;) {
    int any_status = 0;
    const pid_t reaped = ::waitpid(-1, &any_status, 0);
    if (reaped == child) {
      status = any_status;
      break;
    }
    if (reaped < 0 && errno != EINTR) {
      std::fprintf(stderr, "lpd-monitor: waitpid: %s\n", std::strerror(errno));
      return 1;
    }
  }
  // What the command left running: recorded, then killed and reaped.
  const auto leftovers = lpd::daemon::kill_own_descendants(cgroup.kill_fd);
  g_cgroup_kill_fd = -1;
  if (cgroup.kill_fd >= 0) ::close(cgroup.kill_fd);  // raw: the SIGUSR2 handler wrote to it until just above
  // the whole tree is gone: the rest of its output, then the status.
  if (terminal_copy && !terminal_copy->wait(std::chrono::seconds(10)))
    std::fprintf(stderr, "lpd-monitor: the command's terminal is still held open by a process outside the run; "
                         "its output after this point is not in the log\n");
  if (!cgroup.dir.empty() && ::rmdir(cgroup.dir.c_str()) != 0 && errno != ENOENT)
    std::fprintf(stderr, "lpd-monitor: cannot remove cgroup %s: %s\n", cgroup.dir.c_str(), std::strerror(errno));
  std::string result = "{\"state\":\"exited\",\"pid\":" + std::to_string(child) +
                       ",\"started_at\":" + std::to_string(started_at) +
                       ",\"ended_at\":" + std::to_string(now_seconds());
  if (WIFSIGNALED(status))
    result += ",\"signal\":" + std::to_string(WTERMSIG(status)) + ",\"exit_code\":null";
  else
    result += ",\"signal\":null,\"exit_code\":" + std::to_string(WEXITSTATUS(status));
  // Printable UTF-8 and bounded: lpd's JSON parser refuses anything else,
  // and would lose the exit status with it.
  result += ",\"command\":" + json_string(lpd::daemon::printable_utf8(command[0], 4096));
  result += ",\"tree\":" + json_string(cgroup.dir.empty() ? "subreaper" : "cgroup");
  result += left_running_fields(leftovers, inherited_test, read_start_clock()) + "}\n";
  if (!write_atomically(status_path, result) && !overwrite_in_place(status_path, result)) {
    std::fprintf(stderr, "lpd-monitor: cannot write %s: %s\n", status_path.c_str(), std::strerror(errno));
    return 1;
  }
  return 0;
}
