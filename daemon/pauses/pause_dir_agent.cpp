#include "daemon/pauses/pause_dir_agent.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <nlohmann/json.hpp>

#include "daemon/core/directory_trust.h"
#include "daemon/pauses/pause_dir_command.h"
#include "daemon/runs/run_registry.h"
#include "daemon/core/untrusted_file.h"
#include "daemon/core/write_all.h"

namespace lpd::daemon {
namespace {

using nlohmann::json;

/// Raised inside the agent while it opens the directory: becomes the
/// "failed" message. `code` is the protocol error code lpd answers with.
struct SetupFailure {
  std::string code;
  std::string message;
};

std::string errno_text(int err) {
  if (err == ELOOP) return "is a symbolic link; lpd does not follow it";
  if (err == ENOTDIR) return "is not a directory";
  return std::strerror(err);
}

SetupFailure failure_of(const std::string& what, int err) {
  return {err == EACCES || err == EPERM ? "permission_denied" : "bad_request", what + ": " + errno_text(err)};
}

/// The directory `name` under `parent` (made 0700 when missing), opened
/// without following a link, and trusted: the agent's own (its effective
/// uid) or root's, writable by nobody else; root's sticky /tmp only when
/// `allow_sticky`.
UniqueFd open_subdir(int parent, const std::string& name, const std::string& shown, bool allow_sticky) {
  if (::mkdirat(parent, name.c_str(), 0700) != 0 && errno != EEXIST) throw failure_of(shown, errno);
  UniqueFd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    struct stat link {};
    // O_DIRECTORY answers ENOTDIR before O_NOFOLLOW's ELOOP: say which.
    if (err == ENOTDIR && ::fstatat(parent, name.c_str(), &link, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(link.st_mode))
      err = ELOOP;
    throw failure_of(shown, err);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw failure_of(shown, errno);
  if (auto distrust = directory_distrust(st.st_uid, st.st_mode, ::geteuid(), allow_sticky))
    throw SetupFailure{"permission_denied", shown + ": " + *distrust};
  return fd;
}

struct Dirs {
  UniqueFd run, pauses, commands;
  std::string run_path;
};

Dirs open_dirs(const PauseDirSetup& setup) {
  const std::string& path = setup.path;
  if (path.empty() || path.front() != '/' || path.find('\0') != std::string::npos)
    throw SetupFailure{"bad_request", "pause directory \"" + path + "\" must be an absolute path"};
  if (!is_safe_id(setup.run_id)) throw SetupFailure{"bad_request", "run id is not valid"};
  // DIR's missing parents are made as a user's `mkdir -p` would; the last
  // component and everything below it are judged and opened without links.
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  for (std::size_t slash = trimmed.find('/', 1); slash != std::string::npos; slash = trimmed.find('/', slash + 1))
    (void)::mkdir(trimmed.substr(0, slash).c_str(), 0700);  // an error shows at the open below
  const std::size_t last = trimmed.rfind('/');
  const std::string parent_path = last == 0 ? "/" : trimmed.substr(0, last);
  const std::string base = trimmed.substr(last + 1);
  UniqueFd parent(::open(parent_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent) throw failure_of(parent_path, errno);
  UniqueFd root = base.empty() ? std::move(parent) : open_subdir(parent.get(), base, trimmed, /*allow_sticky=*/true);
  if (base.empty()) {
    struct stat st {};
    if (::fstat(root.get(), &st) != 0) throw failure_of(trimmed, errno);
    if (auto distrust = directory_distrust(st.st_uid, st.st_mode, ::geteuid(), true))
      throw SetupFailure{"permission_denied", trimmed + ": " + *distrust};
  }
  const std::string runs_path = (trimmed == "/" ? "" : trimmed) + "/runs";
  UniqueFd runs = open_subdir(root.get(), "runs", runs_path, false);
  Dirs dirs;
  dirs.run_path = runs_path + "/" + setup.run_id;
  dirs.run = open_subdir(runs.get(), setup.run_id, dirs.run_path, false);
  dirs.pauses = open_subdir(dirs.run.get(), "pauses", dirs.run_path + "/pauses", false);
  dirs.commands = open_subdir(dirs.run.get(), "commands", dirs.run_path + "/commands", false);
  return dirs;
}

void write_or_throw(int fd, std::string_view bytes) {
  if (const int error = write_all(fd, bytes); error != 0) throw std::system_error(error, std::generic_category());
}

/// The agent itself, after the fork: never returns.
class Agent {
 public:
  Agent(int sock, Dirs dirs) : sock_(sock), dirs_(std::move(dirs)) {}

  [[noreturn]] void run() {
    inotify_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    // The watch is on the directory the agent holds open (its cwd, so no
    // path is looked up again): renaming DIR changes nothing.
    if (!inotify_ || ::fchdir(dirs_.commands.get()) != 0 ||
        ::inotify_add_watch(inotify_.get(), ".", IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ONLYDIR) < 0) {
      const std::string why = std::string("cannot watch commands/: ") + std::strerror(errno);
      say({{"op", "failed"}, {"code", "unavailable"}, {"message", why}});
      ::_exit(1);
    }
    say({{"op", "ready"}, {"run_dir", dirs_.run_path}});
    scan_commands();
    for (;;) {
      pollfd fds[2] = {{sock_, POLLIN, 0}, {inotify_.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        ::_exit(1);
      }
      if (fds[0].revents) read_requests();
      if (fds[1].revents) read_inotify();
    }
  }

 private:
  void say(const json& message) {
    try {
      write_or_throw(sock_, message.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
    } catch (const std::system_error&) {
      ::_exit(0);  // lpd went away
    }
  }

  void read_requests() {
    char buf[65536];
    const ssize_t n = ::read(sock_, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) ::_exit(0);  // lpd closed its end: the run is over
    inbox_.append(buf, static_cast<std::size_t>(n));
    for (std::size_t newline; (newline = inbox_.find('\n')) != std::string::npos;) {
      const json request = json::parse(inbox_.substr(0, newline), nullptr, false);
      inbox_.erase(0, newline + 1);
      if (request.is_object()) handle(request);
    }
  }

  int dir_for(const std::string& where) const {
    return where == "pauses" ? dirs_.pauses.get() : where == "commands" ? dirs_.commands.get() : dirs_.run.get();
  }

  void handle(const json& request) {
    const std::string op = request.value("op", "");
    const std::string name = request.value("name", "");
    // Names come from lpd, but a '/' would leave the directory: never.
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") return;
    const std::string where = request.value("where", op == "remove" ? "commands" : "run");
    const int dir = dir_for(where);
    int err = 0;
    if (op == "write") err = replace(dir, name, request.value("text", ""));
    else if (op == "append") err = append(dir, name, request.value("text", ""));
    else if (op == "remove" && ::unlinkat(dir, name.c_str(), 0) != 0 && errno != ENOENT) err = errno;
    if (!err) return;
    const std::string file = dirs_.run_path + "/" + (where == "run" ? "" : where + "/") + name;
    say({{"op", "error"},
         {"message", "cannot " + op + " " + file + ": " + (err == EINVAL ? "not a regular file" : errno_text(err))}});
  }

  /// A new file beside `name`, then renamed over it: whatever was planted
  /// at `name` (a link, a FIFO) is replaced, never followed or opened.
  static int replace(int dir, const std::string& name, const std::string& text) {
    const std::string temp = "." + name + ".lpd-new";
    (void)::unlinkat(dir, temp.c_str(), 0);
    constexpr int kFlags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    UniqueFd fd(::openat(dir, temp.c_str(), kFlags, 0600));
    if (!fd) return errno;
    try {
      write_or_throw(fd.get(), text);
    } catch (const std::system_error& e) {
      (void)::unlinkat(dir, temp.c_str(), 0);
      return e.code().value();
    }
    fd.reset();
    if (::renameat(dir, temp.c_str(), dir, name.c_str()) != 0) {
      const int err = errno;
      (void)::unlinkat(dir, temp.c_str(), 0);
      return err;
    }
    return 0;
  }

  static int append(int dir, const std::string& name, const std::string& text) {
    constexpr int kFlags = O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    UniqueFd fd(::openat(dir, name.c_str(), kFlags, 0600));
    if (!fd) return errno == ENXIO ? EINVAL : errno;  // ENXIO: a FIFO nobody reads
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return errno;
    if (!S_ISREG(st.st_mode)) return EINVAL;
    try {
      write_or_throw(fd.get(), text);  // one write: a line lands whole
    } catch (const std::system_error& e) {
      return e.code().value();
    }
    return 0;
  }

  void read_inotify() {
    alignas(inotify_event) char buf[16384];
    const ssize_t n = ::read(inotify_.get(), buf, sizeof buf);
    if (n <= 0) return;
    for (ssize_t at = 0; at < n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buf + at);
      at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      if (event->mask & IN_Q_OVERFLOW) {
        scan_commands();
      } else if (event->mask & IN_IGNORED) {
        ::_exit(0);  // commands/ itself is gone: nothing more can arrive
      } else if (event->len > 0) {
        // A regular file is read once written (IN_CLOSE_WRITE, IN_MOVED_TO),
        // never half-written at its creation; anything else made in place
        // (a link, a FIFO) only ever shows as IN_CREATE.
        struct stat st {};
        if ((event->mask & IN_CREATE) &&
            (::fstatat(dirs_.commands.get(), event->name, &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISREG(st.st_mode)))
          continue;
        command(event->name);
      }
    }
  }

  void scan_commands() {
    UniqueFd copy(::openat(dirs_.commands.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!copy) return;
    DIR* dir = ::fdopendir(copy.get());
    if (!dir) return;
    copy.release();  // closedir closes it
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(dir))
      if (pause_id_of_command_file(entry->d_name)) names.emplace_back(entry->d_name);
    ::closedir(dir);
    for (const auto& name : names) command(name);
  }

  void command(const std::string& name) {
    if (!pause_id_of_command_file(name)) return;  // not a command file: left alone
    json message = {{"op", "command"}, {"name", name}};
    constexpr int kFlags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    UniqueFd fd(::openat(dirs_.commands.get(), name.c_str(), kFlags));
    struct stat st {};
    if (!fd) {
      if (errno == ENOENT) return;  // gone already (applied, or renamed on)
      message["error"] = errno_text(errno);
    } else if (::fstat(fd.get(), &st) != 0) {
      message["error"] = errno_text(errno);
    } else if (!S_ISREG(st.st_mode)) {
      message["error"] = "is not a regular file";
    } else {
      try {
        BoundedRead read = read_bounded(fd.get(), kMaxPauseCommandBytes);
        if (read.truncated)
          message["error"] = "is larger than " + std::to_string(kMaxPauseCommandBytes / 1024) + " KiB";
        else
          message["text"] = std::move(read.bytes);
      } catch (const std::system_error& e) {
        message["error"] = errno_text(e.code().value());
      }
    }
    say(message);
  }

  int sock_;
  Dirs dirs_;
  UniqueFd inotify_;
  std::string inbox_;
};

[[noreturn]] void agent_main(int sock, const PauseDirSetup& setup) {
  close_inherited_descriptors(sock);
  // lpd's stdin, stdout and stderr (its log, when daemonized) are not the
  // user's: /dev/null instead, before the agent takes the user's ids.
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int fd = 0; fd <= 2 && null_fd >= 0; ++fd) (void)::dup2(null_fd, fd);  // dup2 clears CLOEXEC on 0-2
  if (null_fd > 2) ::close(null_fd);  // one of 0-2 (they were closed) stays: it is stdin, stdout or stderr now
  // lpd's handlers and mask mean nothing here: default actions, nothing blocked.
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2}) ::signal(sig, SIG_DFL);
  ::signal(SIGPIPE, SIG_IGN);  // a write to a gone lpd is an error, not a death mid-file
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  auto fail = [sock](const SetupFailure& f) {
    const std::string line = json{{"op", "failed"}, {"code", f.code}, {"message", f.message}}.dump(
                                 -1, ' ', false, json::error_handler_t::replace) + "\n";
    try {
      write_or_throw(sock, line);
    } catch (...) {
    }
    ::_exit(1);
  };
  const auto& who = setup.who;
  if (who && ::geteuid() == 0 &&
      (::setgroups(who->groups.size(), who->groups.data()) != 0 || ::setresgid(-1, who->gid, -1) != 0 ||
       ::setresuid(-1, who->uid, -1) != 0))
    fail({"internal", "cannot become uid " + std::to_string(who->uid) + ": " + std::strerror(errno)});
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // after the id change, which clears it
  if (::getppid() == 1) ::_exit(0);     // lpd died before that
  ::umask(077);
  try {
    Agent(sock, open_dirs(setup)).run();
  } catch (const SetupFailure& f) {
    fail(f);
  } catch (const std::exception& e) {
    fail({"internal", e.what()});
  }
  ::_exit(1);
}

}  // namespace

PauseDirAgent start_pause_dir_agent(const PauseDirSetup& setup) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    throw std::system_error(errno, std::generic_category(), "socketpair");
  UniqueFd ours(fds[0]), theirs(fds[1]);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    ours.release();  // closed by close_inherited_descriptors
    agent_main(theirs.release(), setup);
  }
  theirs.reset();
  const int flags = ::fcntl(ours.get(), F_GETFL);
  if (flags >= 0) (void)::fcntl(ours.get(), F_SETFL, flags | O_NONBLOCK);
  PauseDirAgent agent;
  agent.pid = pid;
  agent.socket = std::move(ours);
  return agent;
}

}  // namespace lpd::daemon
