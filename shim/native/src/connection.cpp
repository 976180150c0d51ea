#include "shim/native/src/connection.h"

#include <cerrno>
#include <cstring>
#include <string>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "protocol/message.h"

namespace lpd::shim {
namespace {

std::string describe(const std::string& path, std::string_view what, int err) {
  return "lpd at " + path + ": " + std::string(what) + ": " + std::strerror(err);
}

}  // namespace

Connection::Connection(const std::string& path) : path_(path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    throw Unavailable("lpd socket path \"" + path + "\" is empty or too long");
  std::memcpy(addr.sun_path, path.data(), path.size());
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw Unavailable(describe(path, "socket", errno));
  int rc;
  do {
    rc = ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw Unavailable(describe(path, "connect", err));
  }
  // Whoever can create the socket's path can serve it (in /tmp, another
  // user): only root's daemon or our own is trusted.
  ucred peer{};
  socklen_t peer_len = sizeof(peer);
  const bool known = ::getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) == 0;
  const int err = errno;
  if (!known || (peer.uid != 0 && peer.uid != ::geteuid())) {
    ::close(fd_);
    fd_ = -1;
    if (!known) throw Unavailable(describe(path, "cannot tell who serves the socket", err));
    throw Unavailable("lpd at " + path + ": the socket is served by uid " + std::to_string(peer.uid) +
                      ", neither root nor you; refusing to talk to it");
  }
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

void Connection::send_line(std::string_view line) {
  const char* data = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::send(fd_, data, left, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Unavailable(describe(path_, "send", errno));
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
}

bool Connection::fill(std::optional<Clock::time_point> deadline) {
  for (;;) {
    int wait_ms = -1;
    if (deadline) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count();
      if (left <= 0) return false;
      wait_ms = left > 3600 * 1000 ? 3600 * 1000 : static_cast<int>(left);
    }
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, wait_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) throw Unavailable(describe(path_, "poll", errno));
    if (ready == 0) continue;  // loop re-checks the deadline
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Unavailable(describe(path_, "receive", errno));
    if (n == 0) throw Unavailable("lpd at " + path_ + " closed the connection");
    reader_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    return true;
  }
}

nlohmann::json Connection::wait_reply(std::int64_t id, std::optional<Clock::time_point> deadline) {
  for (;;) {
    auto next = reader_.next();
    if (next.status == protocol::LineReader::Status::kOversized)
      throw Unavailable("lpd at " + path_ + " sent a line over the protocol limit");
    if (next.status == protocol::LineReader::Status::kNeedMore) {
      if (!fill(deadline))
        throw protocol::Error(protocol::ErrorCode::kTimeout, "no reply from lpd in time");
      continue;
    }
    if (next.line.empty()) continue;
    protocol::Message message;
    try {
      message = protocol::parse_message(next.line);
    } catch (const protocol::Error&) {
      continue;  // not ours to judge; the daemon never sends these
    }
    if (message.kind != protocol::Kind::kReply) continue;
    const auto& reply_id = message.body["id"];
    if (reply_id.is_number_integer() && reply_id.get<std::int64_t>() == id) return std::move(message.body);
  }
}

void Connection::drain() {
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      reader_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
      while (reader_.next().status != protocol::LineReader::Status::kNeedMore) {
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) throw Unavailable("lpd at " + path_ + " closed the connection");
    return;  // EAGAIN: nothing more
  }
}

}  // namespace lpd::shim
