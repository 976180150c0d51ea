#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "daemon/config.h"
#include "daemon/dispatcher.h"
#include "daemon/file_lock.h"
#include "daemon/server.h"

namespace lpd::daemon {

class Readiness;

/// Daemon is the composition root: it owns the one io_context and wires the
/// server, the dispatcher and the registries together. Handlers reach the
/// parts they need through it; nothing here is global.
class Daemon {
 public:
  explicit Daemon(DaemonConfig config);
  ~Daemon();

  /// Takes the locks, binds (or adopts) the socket, reports readiness and
  /// runs until SIGTERM/SIGINT. Returns the process exit code.
  int run(Readiness& readiness);

  void request_stop();

  boost::asio::io_context& io() { return io_; }
  const DaemonConfig& config() const { return config_; }
  const Server& server() const { return server_; }
  const Dispatcher& dispatcher() const { return dispatcher_; }
  std::chrono::system_clock::time_point started_at() const { return started_at_; }

 private:
  void on_session_closed(const Peer& peer);

  DaemonConfig config_;
  boost::asio::io_context io_;
  std::chrono::system_clock::time_point started_at_;
  Dispatcher dispatcher_;
  Server server_;
  boost::asio::signal_set stop_signals_;
  std::optional<FileLock> socket_lock_;
  std::optional<FileLock> state_lock_;
  bool stopping_ = false;
};

}  // namespace lpd::daemon
