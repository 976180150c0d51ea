#include "daemon/transport/listen_socket.h"

#include "daemon/core/errno_error.h"
#include "daemon/core/directory_trust.h"
#include "daemon/core/unique_fd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <system_error>

#include <spdlog/spdlog.h>

namespace lpd::daemon {
namespace {

sockaddr_un address_of(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    throw std::runtime_error("socket path is too long (max " + std::to_string(sizeof(addr.sun_path) - 1) +
                             " bytes): " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

/// Who serves the socket at `addr`: nullopt when nothing accepts a
/// connection; else the pid of the process that called listen() on it
/// (SO_PEERCRED of our end; 0 when not known).
std::optional<pid_t> listener_of(const sockaddr_un& addr) {
  const UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) return std::nullopt;
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return pid_t{0};
  return cred.pid;
}


}  // namespace

int bind_listening_socket(const std::string& path, mode_t dir_mode, mode_t socket_mode, pid_t dead_lpd) {
  const sockaddr_un addr = address_of(path);
  const auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) make_directories(path.substr(0, slash), dir_mode);

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      throw std::runtime_error(path + " exists and is not a socket; refusing to replace it");
    // An lpd killed just after a fork leaves its listening descriptor, for
    // a moment, in the child (until that child closes lpd's descriptors or
    // execs): the socket answers, but nobody serves it. It is told apart by
    // who listened (SO_PEERCRED): that dead lpd itself. Not by whether the
    // listener lives: a daemon whose parent listened and exited serves on
    // (refused), and a dead lpd's pid may already be someone else's.
    if (const auto listener = listener_of(addr); listener && !(dead_lpd > 0 && *listener == dead_lpd))
      throw AlreadyRunning("socket " + path + " is in use: " +
                           (*listener > 0 ? "pid " + std::to_string(*listener) : std::string("a process")) +
                           " listens on it");
    spdlog::info("replacing stale socket {}", path);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw_errno("cannot remove stale socket " + path);
  }

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw_errno("socket");
  // Bind under a restrictive umask so the socket is never briefly open to all.
  const mode_t old_umask = ::umask(0777 & ~socket_mode);
  const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int bind_errno = errno;
  ::umask(old_umask);
  if (bound != 0) {
    errno = bind_errno;
    throw_errno("cannot bind " + path);
  }
  if (::chmod(path.c_str(), socket_mode) != 0) spdlog::warn("cannot chmod {}: {}", path, std::strerror(errno));
  if (::listen(fd.get(), SOMAXCONN) != 0) throw_errno("cannot listen on " + path);
  return fd.release();
}

}  // namespace lpd::daemon
