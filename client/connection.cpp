#include "client/connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "protocol/error.h"
#include "protocol/limits.h"
#include "protocol/message.h"
#include "protocol/version.h"

namespace lpd::client {

using protocol::Error;
using protocol::ErrorCode;

Connection::Connection(int fd, std::string socket_path, std::chrono::milliseconds timeout)
    : fd_(fd), socket_path_(std::move(socket_path)), timeout_(timeout) {}

Connection::Connection(Connection&& other) noexcept
    : fd_(other.fd_),
      socket_path_(std::move(other.socket_path_)),
      timeout_(other.timeout_),
      reader_(std::move(other.reader_)),
      pushes_(std::move(other.pushes_)),
      next_id_(other.next_id_),
      hello_(std::move(other.hello_)) {
  other.fd_ = -1;
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

Connection Connection::open(const std::string& socket_path, std::chrono::milliseconds timeout,
                            std::string_view role) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) throw DaemonUnreachable(socket_path, "socket path too long");
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw DaemonUnreachable(socket_path, std::strerror(errno));
  // A blocking connect: while a socket-activated lpd restarts, we wait in
  // the listen backlog instead of failing.
  while (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    ::close(fd);
    throw DaemonUnreachable(socket_path, err == ENOENT ? "no such socket" : std::strerror(err),
                            err == ENOENT || err == ECONNREFUSED, err == EACCES || err == EPERM);
  }
  // Whoever can create the socket's path can serve it: in /tmp that may be
  // another user, who would then see our requests (environment included)
  // and forge replies. Only root's daemon or our own is trusted.
  ucred peer{};
  socklen_t peer_len = sizeof(peer);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) != 0) {
    const int err = errno;
    ::close(fd);
    throw DaemonUnreachable(socket_path, std::string("cannot tell who serves the socket: ") + std::strerror(err));
  }
  if (peer.uid != 0 && peer.uid != ::geteuid()) {
    ::close(fd);
    throw DaemonUnreachable(socket_path, "the socket is served by uid " + std::to_string(peer.uid) +
                                             ", neither root nor you; refusing to talk to it");
  }
  Connection connection(fd, socket_path, timeout);
  try {
    connection.hello_ = connection.request(
        "hello", {{"role", role}, {"pid", ::getpid()}, {"protocol", protocol::kProtocolVersion}});
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kTimeout) throw DaemonUnreachable(socket_path, "no answer to hello");
    throw;
  }
  return connection;
}

void Connection::send_line(const std::string& line) {
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::send(fd_, p, left, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      // lpd may have answered and closed first (out of descriptors, it
      // turns newcomers away with one error line): that line says more
      // than "broken pipe".
      if (err == EPIPE || err == ECONNRESET) throw_connection_error_if_any();
      throw DaemonUnreachable(socket_path_, std::string("send failed: ") + std::strerror(err));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void Connection::throw_connection_error_if_any() {
  try {
    for (;;) {
      auto message = read_message(Clock::now());
      if (!message) return;
      if (message->contains("ok") && (*message)["id"].is_null()) protocol::result_or_throw(*message);
    }
  } catch (const DaemonUnreachable&) {
    // Nothing (more) to read: the caller reports the send failure.
  }
}

std::optional<json> Connection::read_message(std::optional<Clock::time_point> deadline) {
  bool polled = false;  // a deadline already past still gets one look at the socket
  for (;;) {
    auto next = reader_.next();
    if (next.status == protocol::LineReader::Status::kOversized)
      throw Error(ErrorCode::kTooLarge, "the daemon sent a line over the protocol limit");
    if (next.status == protocol::LineReader::Status::kLine) {
      if (next.line.empty()) continue;
      return protocol::parse_message(next.line).body;
    }
    int wait_ms = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
      if (left <= 0 && polled) return std::nullopt;
      wait_ms = static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
    }
    pollfd pfd{fd_, POLLIN, 0};
    int ready = ::poll(&pfd, 1, wait_ms);
    polled = true;
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) throw DaemonUnreachable(socket_path_, std::strerror(errno));
    if (ready == 0) return std::nullopt;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw DaemonUnreachable(socket_path_, "the daemon closed the connection");
    reader_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
  }
}

json Connection::request(std::string_view op, json fields, std::optional<std::chrono::milliseconds> timeout) {
  const std::int64_t id = next_id_++;
  std::string line = protocol::encode_request(id, op, std::move(fields));
  // lpd would refuse it and close the connection with a line that names no
  // cause: say which request, and how large, before sending anything.
  if (line.size() - 1 > protocol::kMaxLineBytes)
    throw Error(ErrorCode::kTooLarge, "the \"" + std::string(op) + "\" request is " + std::to_string(line.size() - 1) +
                                          " bytes as JSON, over lpd's " + std::to_string(protocol::kMaxLineBytes) +
                                          "-byte line limit");
  send_line(line);
  const auto limit = timeout.value_or(timeout_);
  std::optional<Clock::time_point> deadline;
  if (limit.count() > 0) deadline = Clock::now() + limit;
  for (;;) {
    auto message = read_message(deadline);
    if (!message) throw Error(ErrorCode::kTimeout, "no reply to \"" + std::string(op) + "\" within the timeout");
    if (message->contains("event")) {
      pushes_.push_back(std::move(*message));
      continue;
    }
    if (!message->contains("ok")) continue;
    const json& reply_id = (*message)["id"];
    if (reply_id.is_null()) protocol::result_or_throw(*message);  // a connection-level error
    if (reply_id != id) continue;
    return protocol::result_or_throw(*message);
  }
}

void Connection::notify(std::string_view op, json fields) {
  send_line(protocol::encode_notification(op, std::move(fields)));
}

std::optional<json> Connection::next_push(std::optional<std::chrono::milliseconds> timeout) {
  if (!pushes_.empty()) {
    json push = std::move(pushes_.front());
    pushes_.pop_front();
    return push;
  }
  std::optional<Clock::time_point> deadline;
  if (timeout) deadline = Clock::now() + *timeout;
  for (;;) {
    auto message = read_message(deadline);
    if (!message) return std::nullopt;
    if (message->contains("event")) return message;
  }
}

void DaemonOutage::wait(const DaemonUnreachable& e, const std::string& then) {
  if (!lost_) std::fprintf(stderr, "lpctl: lost lpd (%s); waiting for it to come back%s\n", e.what(), then.c_str());
  lost_ = true;
  std::this_thread::sleep_for(backoff_);
  backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(1000));
}

void DaemonOutage::over(const std::string& doing) {
  if (lost_) std::fprintf(stderr, "lpctl: lpd is back; %s\n", doing.c_str());
  lost_ = false;
  backoff_ = std::chrono::milliseconds(50);
}

}  // namespace lpd::client
