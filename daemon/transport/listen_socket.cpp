#include "daemon/transport/listen_socket.h"

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
#include <system_error>

#include <spdlog/spdlog.h>

namespace lpd::daemon {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

sockaddr_un address_of(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    throw std::runtime_error("socket path is too long (max " + std::to_string(sizeof(addr.sun_path) - 1) +
                             " bytes): " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

bool something_answers(const sockaddr_un& addr) {
  const UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return fd && ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
}

}  // namespace

int bind_listening_socket(const std::string& path, mode_t dir_mode, mode_t socket_mode) {
  const sockaddr_un addr = address_of(path);
  const auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) make_directories(path.substr(0, slash), dir_mode);

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      throw std::runtime_error(path + " exists and is not a socket; refusing to replace it");
    if (something_answers(addr)) throw AlreadyRunning("lpd is already running on socket " + path);
    spdlog::info("replacing stale socket {}", path);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) fail("cannot remove stale socket " + path);
  }

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) fail("socket");
  // Bind under a restrictive umask so the socket is never briefly open to all.
  const mode_t old_umask = ::umask(0777 & ~socket_mode);
  const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int bind_errno = errno;
  ::umask(old_umask);
  if (bound != 0) {
    errno = bind_errno;
    fail("cannot bind " + path);
  }
  if (::chmod(path.c_str(), socket_mode) != 0) spdlog::warn("cannot chmod {}: {}", path, std::strerror(errno));
  if (::listen(fd.get(), SOMAXCONN) != 0) fail("cannot listen on " + path);
  return fd.release();
}

}  // namespace lpd::daemon
