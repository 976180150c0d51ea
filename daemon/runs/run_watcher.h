#pragma once

#include <string>

#include "daemon/core/peer.h"
#include "daemon/runs/run.h"

namespace lpd::daemon {

/// RunWatcher is told what RunService sees of a run's processes: one joined
/// (run.register) and one ended its session cleanly (run.end). JobService
/// is the one watcher: it keeps each process's test activity to pin a crash
/// on. Passed to RunService's constructor, so the edge runs → jobs is
/// visible where both are built (Daemon).
class RunWatcher {
 public:
  virtual ~RunWatcher() = default;
  /// The connection `peer` joined `run` as `worker_id` ("controller" when
  /// the shim named no worker).
  virtual void worker_joined(const Run& run, const std::string& worker_id, const Peer& peer) = 0;
  /// `peer`'s process said run.end: its session ended cleanly (not yet the
  /// process's end: an atexit handler may still crash it).
  virtual void worker_ended_cleanly(const Peer& peer) = 0;
  /// `run` ended (its controller's part is over): what waited for the run's
  /// end, not a process's, is settled now. Default: nothing waits.
  virtual void run_ended(const Run& run) { (void)run; }
};

}  // namespace lpd::daemon
