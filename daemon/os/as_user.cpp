#include "daemon/os/as_user.h"
#include "daemon/core/unique_fd.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>

#include "protocol/error.h"
#include "daemon/core/write_all.h"

namespace lpd::daemon {
namespace {

constexpr std::size_t kMaxMessage = 64 * 1024;

}  // namespace

std::optional<std::string> check_as(const std::optional<Credentials>& who,
                                    const std::function<std::optional<std::string>()>& check,
                                    std::chrono::milliseconds timeout) {
  if (!who || ::geteuid() != 0) return check();
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return std::string("cannot act as uid ") + std::to_string(who->uid) + ": " + std::strerror(errno);
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  const pid_t pid = ::fork();
  if (pid < 0) return std::string("cannot act as uid ") + std::to_string(who->uid) + ": " + std::strerror(errno);
  if (pid == 0) {
    read_end.reset();
    close_inherited_descriptors(write_end.get());
    std::string reply;
    // Only the effective ids (and the groups): every path check uses them,
    // but with real and saved ids still root the user cannot signal,
    // stop or trace this child, and so cannot hold lpd, which waits for it.
    if (::setgroups(who->groups.size(), who->groups.data()) != 0 || ::setresgid(-1, who->gid, -1) != 0 ||
        ::setresuid(-1, who->uid, -1) != 0) {
      reply = std::string("!cannot become uid ") + std::to_string(who->uid) + ": " + std::strerror(errno);
    } else {
      ::umask(022);  // files made here are the user's, with the usual mode
      try {
        if (auto message = check()) reply = "!" + *message;
      } catch (const std::exception& e) {
        reply = std::string("!") + e.what();
      }
    }
    if (reply.empty()) reply = "ok";
    write_all(write_end.get(), std::string_view(reply).substr(0, kMaxMessage));
    ::_exit(0);  // no atexit handlers, no sanitizer report of lpd's heap
  }
  write_end.reset();
  std::string reply;
  char buffer[4096];
  // Bounded: a path on a hung filesystem (a user's FUSE mount) must not
  // hold lpd's one thread for longer than this.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd pfd{read_end.get(), POLLIN, 0};
    const int ready = left.count() > 0 ? ::poll(&pfd, 1, static_cast<int>(left.count())) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    const ssize_t n = ::read(read_end.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (reply.size() < kMaxMessage) reply.append(buffer, static_cast<std::size_t>(n));
  }
  read_end.reset();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    return "checking as uid " + std::to_string(who->uid) + " took over " + std::to_string(timeout.count()) +
           " ms (a filesystem that does not answer?)";
  if (reply == "ok") return std::nullopt;
  if (!reply.empty() && reply.front() == '!') return reply.substr(1);
  return "the check as uid " + std::to_string(who->uid) + " ended without an answer";
}

void check_runnable_as(const std::optional<Credentials>& who, const std::string& command,
                       const std::vector<std::string>& env, const std::string& cwd) {
  using protocol::Error;
  using protocol::ErrorCode;
  // The code travels back in front of the message: "not_found\ncommand not found: x".
  auto failure = check_as(who, [&]() -> std::optional<std::string> {
    auto fail = [](ErrorCode code, const std::string& message) {
      return std::string(protocol::to_string(code)) + "\n" + message;
    };
    struct stat st {};
    if (::stat(cwd.c_str(), &st) != 0)
      return fail(errno == EACCES ? ErrorCode::kPermissionDenied : ErrorCode::kNotFound,
                  "working directory " + cwd + (errno == EACCES ? " cannot be entered: " + std::string(std::strerror(errno))
                                                                 : " does not exist"));
    if (!S_ISDIR(st.st_mode)) return fail(ErrorCode::kNotFound, "working directory " + cwd + " is not a directory");
    if (::faccessat(AT_FDCWD, cwd.c_str(), X_OK, AT_EACCESS) != 0)
      return fail(ErrorCode::kPermissionDenied, "working directory " + cwd + " cannot be entered: " + std::strerror(errno));
    try {
      resolve_executable(command, env, cwd);
    } catch (const Error& e) {
      return fail(e.code(), e.what());
    }
    return std::nullopt;
  });
  if (!failure) return;
  const auto newline = failure->find('\n');
  if (newline != std::string::npos) {
    if (auto code = protocol::error_code_from_string(failure->substr(0, newline)))
      throw Error(*code, failure->substr(newline + 1));
  }
  throw Error(ErrorCode::kInternal, *failure);
}

}  // namespace lpd::daemon
