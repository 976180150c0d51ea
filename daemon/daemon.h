#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <vector>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "daemon/core/access.h"
#include "daemon/config.h"
#include "daemon/crashes/crash_retry.h"
#include "daemon/crashes/crash_store.h"
#include "daemon/transport/dispatcher.h"
#include "daemon/core/event_bus.h"
#include "daemon/core/space_reserve.h"
#include "daemon/host/file_lock.h"
#include "daemon/pauses/pause_service.h"
#include "daemon/os/launcher.h"
#include "daemon/processes/process_service.h"
#include "daemon/jobs/job_service.h"
#include "daemon/history/history.h"
#include "daemon/runs/run_registry.h"
#include "daemon/runs/run_service.h"
#include "daemon/transport/server.h"
#include "daemon/core/state_store.h"
#include "daemon/runs/session_drain.h"

namespace lpd::daemon {

class Readiness;
namespace http {
class HttpServer;  // daemon/http/http_server.h
}

/// Daemon is the composition root: it owns the one io_context and wires the
/// server, the dispatcher and the registries together. Handlers reach the
/// parts they need through it; nothing here is global. Every link between
/// parts is an interface given to a constructor: RunService tells JobService
/// of joins (RunWatcher); the server tells Daemon a connection ended
/// (Server::PeerWatcher), the dispatcher that a batch ended (BatchWatcher:
/// the journals are written), History which runs retention removed
/// (PruneWatcher). The one edge from a family back to the connections is
/// SessionDrain, which Daemon implements itself because the server is built
/// after the families.
class Daemon final : private SessionDrain,
                     private Server::PeerWatcher,
                     private BatchWatcher,
                     private PruneWatcher {
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
  EventBus& events() { return events_; }
  const StateStore& store() const { return store_; }
  const AccessPolicy& access() const { return config_.access; }
  bool socket_from_systemd() const { return socket_from_systemd_; }

  // -- services, one per operation family (each owns its registry) --------
  // (families add their service members and accessors here)
  RunService& runs() { return runs_; }
  PauseService& pauses() { return pauses_; }
  ProcessService& processes() { return processes_; }
  JobService& jobs() { return jobs_; }
  /// Journals, event seqs across restarts, paging of the past, retention.
  History& history() { return history_; }
  /// Every crash record (crashes.jsonl), loaded once at start.
  CrashStore& crashes() { return crashes_; }
  // -- the HTTP and WebSocket server (lpd start --http) --
  /// "127.0.0.1:8080" where it listens (port 0 resolved); "" when off.
  std::string http_address() const;
  /// the HTTP server (each user's token); nullptr when off.
  http::HttpServer* http_server() { return http_.get(); }

 private:
  /// A connection left: each family that keeps per-connection state (event
  /// subscriptions, a waiting pause, a shim's current test, a run's
  /// worker, a helper's log streams and leases) lets go of it, in that order.
  void peer_gone(const Peer& peer) override;
  /// SessionDrain, for JobService: the connection's unread event ring.
  void drain(std::uint64_t session_id) override;
  /// BatchWatcher: writes the journals (one write per batch, none lost with lpd).
  void batch_ended() override;
  void ring_read_begins() override;
  void ring_read_ended(std::uint64_t ring_id, std::uint64_t read_to) override;
  std::optional<std::uint64_t> ring_journaled_to(std::uint64_t ring_id, uid_t uid) override;
  /// PruneWatcher: the removed runs' crash records and kept outputs go too.
  void runs_pruned(const std::set<std::string>& run_ids) override;
  /// Loads what a previous lpd left in the state directory, before serving.
  void restore_state();
  /// The listening fd: systemd's, or one lpd binds itself. -1 after reporting why not.
  int open_listener(Readiness& readiness);
  void ping_watchdog(std::chrono::microseconds interval);

  DaemonConfig config_;
  boost::asio::io_context io_;
  std::chrono::system_clock::time_point started_at_;
  EventBus events_;
  StateStore store_;
  CrashStore crashes_;
  SpaceReserve reserve_;    // blocks of the state directory, given back for the last writes at a stop
  CrashRetry crash_retry_;  // writes crash records a full disk refused, once it takes them
  RunRegistry run_registry_;  // RunService is its I/O edge; other families read it
  PauseService pauses_;
  History history_;
  SystemProcessLauncher process_launcher_;
  ProcessService processes_;
  JobService jobs_;
  RunService runs_;  // after jobs_, its RunWatcher
  Dispatcher dispatcher_;
  Server server_;
  boost::asio::signal_set stop_signals_;
  std::optional<FileLock> socket_lock_;
  std::optional<int> systemd_fd_;
  bool socket_from_systemd_ = false;  // then systemd keeps it: never unlink it
  std::optional<boost::asio::steady_timer> watchdog_;
  std::optional<FileLock> state_lock_;
  bool stopping_ = false;
  // -- last, so it goes first (its jobs listen to events_) --
  std::unique_ptr<http::HttpServer> http_;
  /// Starts http_ when --http was given; false after reporting why not.
  bool start_http(Readiness& readiness);
};

}  // namespace lpd::daemon
