// lpd's HTTP and WebSocket server (Boost.Beast, in http_server.cpp only).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "daemon/core/access.h"
#include "daemon/transport/dispatcher.h"
#include "daemon/core/event_bus.h"

namespace lpd::daemon::http {

class UserTokens;  // daemon/http/user_tokens.h

/// HttpServer serves pytest-relay-run's job API, POST /api/op/{op}, the
/// WebSocket GET /ws and the dashboard on lpd's own io_context (one
/// thread, no locks). Beast stays inside http_server.cpp: this header is
/// all the daemon sees.
///
/// Bounded: request headers 16 KiB, bodies 1 MiB, JSON 64 levels deep,
/// 128 connections, 16 unauthenticated per local peer uid
/// (ConnectionLimits), 32 per token user other than lpd's and
/// root's (503 past that), a header must arrive within 10 s and the
/// request within 30 s of the connection or the previous reply, a reply be
/// taken within 60 s; a
/// WebSocket is pinged when idle and dropped when silent for 60 s, its
/// send queue is WsOutbox's; it is closed with 1008 and a reason when
/// its token is rotated or its user is gone. Every request is a
/// Peer of the token's user (UserTokens) going through the
/// Dispatcher.
class HttpServer {
 public:
  /// `peer_gone`: the daemon's "a connection left" (registries drop what
  /// a request or WebSocket held).
  HttpServer(boost::asio::io_context& io, Dispatcher& dispatcher, EventBus& events, const AccessPolicy& access,
             std::function<void(const Peer&)> peer_gone);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Loads or makes the token (<state_dir>/http.token), binds `listen`
  /// (see parse_listen_address) and starts accepting. Returns the bound
  /// address, "127.0.0.1:41234" (port 0 resolved). Throws
  /// std::runtime_error / std::invalid_argument saying why not.
  std::string start(const std::string& listen, bool allow_remote, const std::string& state_dir,
                    const std::string& socket_path);
  /// Stops accepting and closes every connection.
  void stop();
  /// "" until started.
  const std::string& address() const;
  /// each user's token (the http.token operation); nullptr until started.
  UserTokens* tokens();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lpd::daemon::http
