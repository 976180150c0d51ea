#pragma once

#include <span>
#include <vector>

#include <sys/types.h>

namespace lpd::daemon {

/// What one non-blocking recvmsg(2) on a Unix stream socket brought: bytes,
/// and any descriptors the peer passed with SCM_RIGHTS (close-on-exec,
/// owned by the caller from here on).
struct Received {
  ssize_t bytes = 0;  // 0 at end of stream, -1 with `error` set
  int error = 0;
  std::vector<int> fds;
};

/// At most this many descriptors are taken from one message; the kernel
/// closes the rest.
inline constexpr int kMaxPassedFds = 4;

Received receive_with_fds(int socket_fd, std::span<char> buffer);

}  // namespace lpd::daemon
