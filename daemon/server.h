#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/dispatcher.h"
#include "daemon/session.h"

namespace lpd::daemon {

/// Server accepts connections on an already listening Unix socket and keeps
/// the set of live sessions. Who bound the socket (lpd itself or systemd) is
/// not its business.
class Server {
 public:
  using SessionClosed = std::function<void(const Peer&)>;

  Server(boost::asio::io_context& io, Dispatcher& dispatcher, std::chrono::milliseconds hello_timeout);

  /// Starts accepting on `listen_fd`, which the server now owns.
  void start(int listen_fd);
  /// Stops accepting and closes every session.
  void stop();

  void on_session_closed(SessionClosed callback) { on_closed_ = std::move(callback); }

  std::size_t open_sessions() const { return sessions_.size(); }
  std::uint64_t accepted_total() const { return next_session_id_ - 1; }
  /// Looks a live session up by id; null once it is gone.
  std::shared_ptr<Session> session(std::uint64_t id) const;

 private:
  void accept_next();

  boost::asio::io_context& io_;
  Dispatcher& dispatcher_;
  std::chrono::milliseconds hello_timeout_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer accept_retry_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Session>> sessions_;
  std::uint64_t next_session_id_ = 1;
  SessionClosed on_closed_;
};

}  // namespace lpd::daemon
