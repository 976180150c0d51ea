// user-database lookups for a statically linked lpctl.

#include "protocol/split.h"
//
// In a static program, glibc's getpwnam_r/getpwuid_r dlopen the NSS modules
// nsswitch.conf lists besides "files" (Debian 12: "files systemd"); such a
// module brings the shared libc in beside the static one, and the lookup of
// a name no module knows crashed lpctl (SIGSEGV in _nss_systemd_is_blocked
// for `lpctl ps --owner nosuchuser`). When lpctl is linked statically,
// client/CMakeLists.txt routes both calls here (ld --wrap): they ask
// getent(1), a dynamically linked program that consults every module exactly
// as the shared libc would. Only --owner and owner labels look users up, once
// per user, so the extra process is not on any hot path.
#include <fcntl.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr const char* kGetent = "/usr/bin/getent";  // libc-bin, an Essential package
constexpr std::size_t kMaxLine = 64 * 1024;          // far longer than any passwd entry

/// Runs `getent passwd -- key` and returns its first output line; an empty
/// string when getent found nothing (its exit code 2). Sets `error` (EIO and
/// friends) when getent could not run or failed otherwise.
std::string getent_passwd(const std::string& key, int& error) {
  error = 0;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    error = errno;
    return {};
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);  // dup2 clears CLOEXEC
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::string command = "getent", database = "passwd", end_of_options = "--", key_arg = key;
  char* argv[] = {command.data(), database.data(), end_of_options.data(), key_arg.data(), nullptr};
  char* envp[] = {nullptr};  // getent needs no environment; nothing of lpctl's leaks into it
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, kGetent, &actions, nullptr, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  std::string output;
  if (spawned == 0) {
    char chunk[4096];
    while (output.size() < kMaxLine) {
      const ssize_t got = ::read(pipe_fds[0], chunk, sizeof chunk);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      output.append(chunk, static_cast<std::size_t>(got));
    }
  }
  ::close(pipe_fds[0]);  // a getent still writing gets EPIPE and ends
  if (spawned != 0) {
    error = spawned;
    return {};
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      error = errno;
      return {};
    }
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2) return {};  // "key not found"
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    error = EIO;
    return {};
  }
  const auto end = output.find('\n');
  if (end == std::string::npos) {
    error = EIO;
    return {};
  }
  output.resize(end);
  return output;
}

/// Fills `pw` from one passwd(5) line, its strings copied into `buffer`.
/// Returns 0, ERANGE when `buffer` is too small, EIO for a malformed line.
int fill_passwd(std::string_view line, passwd* pw, char* buffer, std::size_t size) {
  const std::vector<std::string_view> fields = lpd::protocol::split(line, ":");
  if (fields.size() != 7) return EIO;
  auto number = [](std::string_view text, unsigned long& value) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    return ec == std::errc() && end == text.data() + text.size() && !text.empty();
  };
  unsigned long uid = 0, gid = 0;
  if (!number(fields[2], uid) || !number(fields[3], gid) || uid >= static_cast<uid_t>(-1) ||
      gid >= static_cast<gid_t>(-1))
    return EIO;
  std::size_t used = 0;
  char* copies[7] = {};
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (size - used < fields[i].size() + 1) return ERANGE;
    copies[i] = buffer + used;
    std::memcpy(copies[i], fields[i].data(), fields[i].size());
    copies[i][fields[i].size()] = '\0';
    used += fields[i].size() + 1;
  }
  *pw = passwd{};
  pw->pw_name = copies[0];
  pw->pw_passwd = copies[1];
  pw->pw_uid = static_cast<uid_t>(uid);
  pw->pw_gid = static_cast<gid_t>(gid);
  pw->pw_gecos = copies[4];
  pw->pw_dir = copies[5];
  pw->pw_shell = copies[6];
  return 0;
}

int lookup(const std::string& key, passwd* pw, char* buffer, std::size_t size, passwd** result) {
  *result = nullptr;
  int error = 0;
  const std::string line = getent_passwd(key, error);
  if (error != 0) return error;
  if (line.empty()) return 0;  // no such user: success with no entry, as getpwnam_r(3)
  if (const int filled = fill_passwd(line, pw, buffer, size); filled != 0) return filled;
  *result = pw;
  return 0;
}

}  // namespace

/// getpwnam_r(3) and getpwuid_r(3) for the static lpctl (same arguments and
/// returns: 0 with *result null when there is no such user, else an errno).
extern "C" int __wrap_getpwnam_r(const char* name, passwd* pw, char* buffer, std::size_t size, passwd** result) {
  // getent reads an all-digits key as a uid; getpwnam_r means a name.
  if (name[0] == '\0' || name[std::strspn(name, "0123456789")] == '\0') {
    *result = nullptr;
    return 0;
  }
  return lookup(name, pw, buffer, size, result);
}

extern "C" int __wrap_getpwuid_r(uid_t uid, passwd* pw, char* buffer, std::size_t size, passwd** result) {
  return lookup(std::to_string(uid), pw, buffer, size, result);
}
