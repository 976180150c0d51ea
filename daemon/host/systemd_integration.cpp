#include "daemon/host/systemd_integration.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include <systemd/sd-daemon.h>

namespace lpd::daemon {

std::optional<int> systemd_listen_fd() {
  const int n = sd_listen_fds(/*unset_environment=*/1);
  if (n < 0) throw std::runtime_error("cannot read the sockets systemd passed");
  if (n == 0) return std::nullopt;
  if (n > 1) throw std::runtime_error("systemd passed " + std::to_string(n) + " sockets; lpd serves exactly one");
  const int fd = SD_LISTEN_FDS_START;
  if (sd_is_socket_unix(fd, SOCK_STREAM, /*listening=*/1, nullptr, 0) <= 0)
    throw std::runtime_error("the socket systemd passed is not a listening Unix stream socket");
  return fd;
}

std::string socket_path_of(int fd) {
  sockaddr_un addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || addr.sun_family != AF_UNIX) return "";
  if (len <= offsetof(sockaddr_un, sun_path) || addr.sun_path[0] == '\0') return "";
  return std::string(addr.sun_path);
}

void notify_ready() { sd_notifyf(0, "READY=1\nMAINPID=%lu\nSTATUS=serving", static_cast<unsigned long>(::getpid())); }

void notify_stopping() { sd_notify(0, "STOPPING=1"); }

void notify_watchdog() { sd_notify(0, "WATCHDOG=1"); }

std::optional<std::chrono::microseconds> watchdog_ping_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (!stream) return false;
  unsigned long dev = 0, ino = 0;
  if (std::sscanf(stream, "%lu:%lu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

}  // namespace lpd::daemon
