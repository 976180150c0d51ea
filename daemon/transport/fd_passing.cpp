#include "daemon/transport/fd_passing.h"

#include <cerrno>
#include <cstring>

#include <sys/socket.h>

namespace lpd::daemon {

Received receive_with_fds(int socket_fd, std::span<char> buffer) {
  Received received;
  iovec iov{buffer.data(), buffer.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  received.bytes = ::recvmsg(socket_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (received.bytes < 0) {
    received.error = errno;
    return received;
  }
  // The kernel installs passed descriptors in lpd's table as it hands
  // them over; one it cannot install (EMFILE) is closed and only this
  // flag says it ever came.
  received.fds_dropped = (msg.msg_flags & MSG_CTRUNC) != 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      received.fds.push_back(fd);
    }
  }
  return received;
}

}  // namespace lpd::daemon
