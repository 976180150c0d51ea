#pragma once

#include <functional>
#include <map>
#include <memory>
#include <random>

#include <boost/asio/io_context.hpp>

#include "daemon/core/operation.h"
#include "daemon/core/event_bus.h"
#include "daemon/os/exit_watch.h"
#include "daemon/runs/run_registry.h"
#include "daemon/core/state_store.h"

namespace lpd::daemon {

/// RunService is the I/O edge of the run registry: it turns run.register /
/// run.end and departing connections into registry changes, mirrors each
/// run to runs/<run_id>/run.json and publishes run.started / run.ended.
class RunService {
 public:
  RunService(boost::asio::io_context& io, EventBus& events, const StateStore& store);

  json handle_register(Call& call);
  json handle_end(Call& call);
  json handle_list(Call& call);
  void peer_gone(const Peer& peer);
  /// Loads runs/*/run.json; an active run whose controller is gone is ended.
  void restore();

  RunRegistry& registry() { return registry_; }

  /// Told when a process joins a run and when one ends its part cleanly.
  std::function<void(const Run&, const std::string& worker_id, const Peer&)> on_join;
  std::function<void(const Peer&)> on_clean_end;

 private:
  void persist(const Run& run);
  void ended(Run& run);
  void watch_controller(const Run& run);
  /// the pid run.list shows for a run no shim registered (pid
  /// 0): its command's, from lpd-monitor's status file; null when lpd does
  /// not know it (not started yet, or not a supervised run).
  json command_pid(const Run& run) const;

  boost::asio::io_context& io_;
  EventBus& events_;
  const StateStore& store_;
  RunRegistry registry_;
  std::mt19937 random_{std::random_device{}()};
  /// Controllers of runs restored after a restart have no connection until
  /// they reconnect; their pidfd tells us if they die first.
  std::map<std::string, std::shared_ptr<ExitWatch>> controller_watches_;
};

}  // namespace lpd::daemon
