#pragma once

#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "daemon/core/operation.h"
#include "daemon/core/event_bus.h"
#include "daemon/os/exit_watch.h"
#include "daemon/runs/run_registry.h"
#include "daemon/core/state_store.h"
#include "daemon/runs/run_watcher.h"

namespace lpd::daemon {

/// What run.register answers: the run joined, as whom, and whether it began now.
struct RunJoined {
  std::string run_id;
  std::string worker_id;  // "controller" for the process that started the run
  bool is_new = false;
};

/// One page of run.list: the runs as the caller may see them, and where
/// the next page starts (nullopt: this was the last).
struct RunPage {
  std::vector<json> runs;
  std::optional<RunRegistry::Cursor> next;
};

/// What the caller may see of a run's record (Call::view).
using RunView = std::function<json(const Run& run, json record)>;

/// RunService is the I/O edge of the run registry: it turns run.register /
/// run.end and departing connections into registry changes, mirrors each
/// run to runs/<run_id>/run.json and publishes run.started / run.ended.
/// Its API is typed; run_ops.h decodes the operations into it.
class RunService {
 public:
  /// `registry`: the runs, owned by the composition root (JobService and
  /// the pause and history families read it too). `watcher` hears of each
  /// process that joins a run or ends its session cleanly.
  RunService(boost::asio::io_context& io, EventBus& events, const StateStore& store, RunRegistry& registry,
             RunWatcher& watcher);

  /// `peer` joins run `request.run_id` (a new run when empty or unknown) as
  /// `request.worker_id` (the controller when empty); the request's pid,
  /// uid and session are the peer's. Throws bad_request (worker_id),
  /// permission_denied / conflict (RunRegistry::join), unavailable (a new
  /// run lpd cannot record).
  RunJoined join(JoinRequest request, const Peer& peer);
  /// `peer`'s part in its runs ended cleanly (run.end); true when it had one.
  bool end_part(const Peer& peer);
  /// Active runs (every run with `all`) after `after` in listing order: at
  /// most `limit` of them and PageLimits::kMaxReplyBytes.
  RunPage list(bool all, std::size_t limit, const std::optional<RunRegistry::Cursor>& after,
               const RunView& view) const;
  void peer_gone(const Peer& peer);
  /// Loads runs/*/run.json; an active run whose controller is gone is ended.
  void restore();

  RunRegistry& registry() { return registry_; }

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
  RunRegistry& registry_;
  RunWatcher& watcher_;
  std::mt19937 random_{std::random_device{}()};
  /// Controllers of runs restored after a restart have no connection until
  /// they reconnect; their pidfd tells us if they die first.
  std::map<std::string, std::shared_ptr<ExitWatch>> controller_watches_;
};

}  // namespace lpd::daemon
