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
  /// The peer passed descriptors that the kernel dropped on the way in
  /// (MSG_CTRUNC): lpd had no free slot for them (EMFILE), or they were
  /// more than kMaxPassedFds. `fds` holds those that did arrive, if any.
  bool fds_dropped = false;
};

/// At most this many descriptors are taken from one message; the kernel
/// closes the rest.
inline constexpr int kMaxPassedFds = 4;

/// One recvmsg(2) into `buffer`, MSG_DONTWAIT. Never throws: a failure is
/// `bytes == -1` with `error`.
Received receive_with_fds(int socket_fd, std::span<char> buffer);

}  // namespace lpd::daemon
