#include "daemon/transport/server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "daemon/core/resource_shortage.h"
#include "protocol/message.h"

namespace lpd::daemon {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

Server::Server(asio::io_context& io, Dispatcher& dispatcher, std::chrono::milliseconds hello_timeout,
               PeerWatcher& peers)
    : io_(io),
      dispatcher_(dispatcher),
      hello_timeout_(hello_timeout),
      acceptor_(io),
      accept_retry_(io),
      ring_poller_(io.get_executor(), Session::kRingWindow, [&dispatcher] { dispatcher.end_of_batch(); }),
      peers_(peers) {}

Server::~Server() = default;

void Server::start(int listen_fd) {
  // lpd's own socket is close-on-exec already; one systemd passes is not,
  // and a child holding it could accept other users' connections.
  ::fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
  acceptor_.assign(stream(), listen_fd);
  // accept4 below must say EAGAIN, not block, once the backlog is empty.
  acceptor_.non_blocking(true);
  reopen_spare();
  accept_next();
}

void Server::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  accept_retry_.cancel();
  // close() calls back into the session's closed callback, which erases; iterate over a copy.
  auto sessions = sessions_;
  for (auto& [id, session] : sessions) session->close();
}

std::shared_ptr<Session> Server::session(std::uint64_t id) const {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

void Server::reopen_spare() {
  if (!spare_fd_) spare_fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

void Server::accept_next() {
  // Wait for readiness and accept with accept4 ourselves: Asio's
  // async_accept uses accept(2), whose sockets every child would inherit.
  acceptor_.async_wait(stream::acceptor::wait_read, [this](boost::system::error_code ec) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      retry_accept_later("waiting for connections failed", ec.value());
      return;
    }
    accept_ready();
  });
}

void Server::accept_ready() {
  if (!acceptor_.is_open()) return;
  // Readiness comes as an edge: take everything waiting, but a bounded
  // number per turn so that a crowd connecting does not starve sessions.
  for (int turn = 0; turn < kAcceptsPerTurn; ++turn) {
    const int fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      start_session(fd);
      continue;
    }
    const int error = errno;
    if (error == EAGAIN || error == EWOULDBLOCK) {
      accept_next();
      return;
    }
    // The peer gave up while it waited in the backlog: next one.
    if (error == EINTR || error == ECONNABORTED || error == EPROTO) continue;
    if (error == EMFILE || error == ENFILE) {
      // accept4 takes the descriptor before it looks at the backlog, so
      // EMFILE does not even say that anyone is waiting.
      const auto outcome = turn_away(error);
      if (outcome == TurnAway::kAnswered) continue;
      if (outcome == TurnAway::kNobodyWaiting) {
        accept_next();
        return;
      }
    }
    // ENOMEM, ENOBUFS, or no spare descriptor left: retrying at once would
    // spin, so back off briefly and let sessions close in the meantime.
    retry_accept_later("accept failed", error);
    return;
  }
  asio::post(io_, [this] { accept_ready(); });
}

void Server::say_and_close(UniqueFd fd, const std::string& line) {
  // Best effort and never blocking: a fresh socket's buffer takes one line.
  (void)!::send(fd.get(), line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ::shutdown(fd.get(), SHUT_WR);
  // Discard what the peer already sent (its hello), so that it reads our
  // line and then a plain end of stream rather than a reset.
  char discard[4096];
  for (int i = 0; i < 16 && ::recv(fd.get(), discard, sizeof(discard), MSG_DONTWAIT) > 0; ++i) {
  }
}

Server::TurnAway Server::turn_away(int error) {
  if (!spare_fd_) reopen_spare();
  if (!spare_fd_) return TurnAway::kNoSpare;
  spare_fd_.reset();
  UniqueFd fd(::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  const int accept_error = fd ? 0 : errno;
  const bool accepted = static_cast<bool>(fd);
  if (accepted) {
    say_and_close(std::move(fd), protocol::encode_reply_error(
                          nullptr, protocol::ErrorCode::kUnavailable,
                          describe_shortage(error) + "; lpd keeps serving the connections it has and takes new ones "
                                                     "again once descriptors are free: try again later"));
    ++turned_away_total_;
    if (turned_away_in_a_row_++ == 0)
      spdlog::warn("{}: answering new connections \"unavailable\" until descriptors are free",
                   describe_shortage(error));
  }
  reopen_spare();
  if (accepted) return spare_fd_ ? TurnAway::kAnswered : TurnAway::kNoSpare;
  if (accept_error == EAGAIN || accept_error == EWOULDBLOCK) return TurnAway::kNobodyWaiting;
  // The one who waited gave up (ECONNABORTED...): look for the next.
  if (accept_error == EINTR || accept_error == ECONNABORTED || accept_error == EPROTO) return TurnAway::kAnswered;
  return TurnAway::kNoSpare;
}

void Server::retry_accept_later(const char* why, int error) {
  spdlog::warn("{}: {}; retrying in 100 ms", why,
               is_resource_shortage(error) ? describe_shortage(error) : std::strerror(error));
  accept_retry_.expires_after(std::chrono::milliseconds(100));
  accept_retry_.async_wait([this](boost::system::error_code wait_ec) {
    if (wait_ec) return;
    reopen_spare();
    accept_ready();
  });
}

void Server::start_session(int fd) {
  UniqueFd owned(fd);
  stream::socket socket(io_);
  boost::system::error_code ec;
  socket.assign(stream(), owned.get(), ec);
  if (ec) {
    spdlog::warn("cannot serve a new connection: {}", ec.message());
    return;
  }
  owned.release();  // the socket has it now
  if (turned_away_in_a_row_ > 0) {
    spdlog::info("accepting connections again, after turning {} away", turned_away_in_a_row_);
    turned_away_in_a_row_ = 0;
  }
  Peer peer;
  peer.session_id = next_session_id_++;
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    peer.uid = cred.uid;
    peer.gid = cred.gid;
    peer.pid = cred.pid;
  }
  gid_t groups[256];
  socklen_t groups_len = sizeof(groups);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &groups_len) == 0)
    peer.groups.assign(groups, groups + groups_len / sizeof(gid_t));
  // One user's connections are bounded, so that user cannot take every
  // descriptor (and a read buffer each) from everyone else. Root is not.
  std::size_t& of_user = connections_per_uid_[peer.uid];
  if (peer.uid != 0 && connections_per_user_ > 0 && of_user >= connections_per_user_) {
    if (refused_in_a_row_++ == 0)
      spdlog::warn("uid {} has {} connections open; refusing more until some close", peer.uid, of_user);
    say_and_close(UniqueFd(socket.release()), protocol::encode_reply_error(
                                        nullptr, protocol::ErrorCode::kLimitExceeded,
                                        "uid " + std::to_string(peer.uid) + " already has " +
                                            std::to_string(connections_per_user_) +
                                            " connections open to lpd, the most one user may have (lpd start "
                                            "--connections-per-user-max); close some"));
    return;
  }
  refused_in_a_row_ = 0;
  ++of_user;
  spdlog::debug("session {}: connected, pid {} uid {}", peer.session_id, peer.pid, peer.uid);
  auto session = std::make_shared<Session>(std::move(socket), std::move(peer), dispatcher_, hello_timeout_,
                                           [this](Session& s) {
                                             const Peer closed = s.peer();
                                             sessions_.erase(closed.session_id);
                                             auto it = connections_per_uid_.find(closed.uid);
                                             if (it != connections_per_uid_.end() && --it->second == 0)
                                               connections_per_uid_.erase(it);
                                             spdlog::debug("session {}: closed", closed.session_id);
                                             peers_.peer_gone(closed);
                                           },
                                           &ring_poller_, &unfinished_lines_);
  sessions_.emplace(session->peer().session_id, session);
  session->start();
}

}  // namespace lpd::daemon
