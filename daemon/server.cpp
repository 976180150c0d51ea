#include "daemon/server.h"

#include <sys/socket.h>

#include <spdlog/spdlog.h>

namespace lpd::daemon {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

Server::Server(asio::io_context& io, Dispatcher& dispatcher, std::chrono::milliseconds hello_timeout)
    : io_(io), dispatcher_(dispatcher), hello_timeout_(hello_timeout), acceptor_(io), accept_retry_(io) {}

void Server::start(int listen_fd) {
  acceptor_.assign(stream(), listen_fd);
  accept_next();
}

void Server::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  accept_retry_.cancel();
  // close() calls back into on_closed, which erases; iterate over a copy.
  auto sessions = sessions_;
  for (auto& [id, session] : sessions) session->close();
}

std::shared_ptr<Session> Server::session(std::uint64_t id) const {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

void Server::accept_next() {
  acceptor_.async_accept([this](boost::system::error_code ec, stream::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // EMFILE and friends: retrying at once would spin, so back off briefly
      // and let sessions close in the meantime.
      spdlog::warn("accept failed: {}; retrying in 100 ms", ec.message());
      accept_retry_.expires_after(std::chrono::milliseconds(100));
      accept_retry_.async_wait([this](boost::system::error_code wait_ec) {
        if (!wait_ec) accept_next();
      });
      return;
    }
    Peer peer;
    peer.session_id = next_session_id_++;
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      peer.uid = cred.uid;
      peer.gid = cred.gid;
      peer.pid = cred.pid;
    }
    gid_t groups[256];
    socklen_t groups_len = sizeof(groups);
    if (getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERGROUPS, groups, &groups_len) == 0)
      peer.groups.assign(groups, groups + groups_len / sizeof(gid_t));
    spdlog::debug("session {}: connected, pid {} uid {}", peer.session_id, peer.pid, peer.uid);
    auto session = std::make_shared<Session>(std::move(socket), std::move(peer), dispatcher_, hello_timeout_,
                                             [this](Session& s) {
                                               const Peer closed = s.peer();
                                               sessions_.erase(closed.session_id);
                                               spdlog::debug("session {}: closed", closed.session_id);
                                               if (on_closed_) on_closed_(closed);
                                             });
    sessions_.emplace(session->peer().session_id, session);
    session->start();
    accept_next();
  });
}

}  // namespace lpd::daemon
