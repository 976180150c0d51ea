#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <unordered_map>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/runs/run.h"

namespace lpd::daemon {

/// What a process says when it joins a run (the controller, or an xdist
/// worker naming its controller's run).
struct JoinRequest {
  std::string run_id;     // empty: start a new run
  std::string worker_id;  // empty: the controller
  pid_t pid = 0;
  uid_t uid = static_cast<uid_t>(-1);
  std::uint64_t session_id = 0;
  std::string hostname;
  std::string cwd;
  std::vector<std::string> argv;
};

/// RunRegistry knows every run and which connection belongs to which
/// worker. Plain data and rules; ids are made by the caller-supplied maker.
class RunRegistry {
 public:
  /// `prefix` + make_run_id(now, ...) with a `random()` that names no run
  /// kept here: two runs made in one second share 24 random bits only, and
  /// a new run given a kept run's id would join it (or overwrite its
  /// run.json) instead of being a run of its own.
  std::string unused_run_id(std::string_view prefix, double now, const std::function<std::uint32_t()>& random) const;
  /// Joins or creates a run. Throws permission_denied when the run belongs
  /// to another user, conflict when it already ended, limit_exceeded for a
  /// new worker of a run that has kMaxWorkersPerRun (ended ones count).
  Run& join(const JoinRequest& request, const std::string& new_run_id, double now);
  /// Workers one run may have had: pytest -n 256 restarting each worker
  /// three times fits.
  static constexpr std::size_t kMaxWorkersPerRun = 1024;
  /// Runs one user other than root may have active at once (each pytest
  /// session and `lpctl run` is one): past it a new one is refused. Every
  /// active run holds a directory, journals and memory, and ends with work
  /// on lpd's one thread.
  static constexpr std::size_t kMaxActiveRunsPerUser = 256;
  /// Throws limit_exceeded when `uid` (not root) already has
  /// kMaxActiveRunsPerUser active runs. O(runs).
  void check_room_for_run(uid_t uid) const;

  Run* find(std::string_view run_id);
  const Run* find(std::string_view run_id) const { return const_cast<RunRegistry*>(this)->find(run_id); }
  /// Adds a run restored from disk (ended runs are kept for listing), or
  /// a supervised run created by `lpctl run` before any process joins it.
  void restore(Run run);

  /// Marks a worker's clean end (run.end). O(runs of the connection).
  void finish(std::uint64_t session_id);
  /// True when the connection `session_id` is a worker of some run.
  /// O(runs of the connection).
  bool has_part(std::uint64_t session_id) const;
  /// A connection closed: returns the runs that ended because their
  /// controller left. Worker departures do not end a run. O(runs of the
  /// connection): it runs at every connection's end, whatever the history.
  std::vector<Run*> peer_gone(std::uint64_t session_id, double now);
  /// Ends a run explicitly; false when it was not active.
  bool end(std::string_view run_id, double now);

  std::vector<const Run*> list(bool include_ended) const;
  std::size_t active_count() const;

  /// A place in the listing order of runs: by created_at, then run_id.
  struct Cursor {
    double created_at = 0;
    std::string run_id;
  };
  /// Calls `visit` for each run after `after` (nullopt: from the first) in
  /// listing order, active ones only unless `include_ended`, until visit
  /// returns false. O(log runs) to find the start.
  void visit_after(bool include_ended, const std::optional<Cursor>& after,
                   const std::function<bool(const Run&)>& visit) const;
  /// Forgets a run (retention removed it). False when it was not known.
  bool erase(std::string_view run_id);

 private:
  /// Calls `visit(run, worker)` for each worker whose connection is
  /// `session_id`, through runs_of_session_.
  template <typename Visit>
  void visit_workers_of(std::uint64_t session_id, Visit visit);

  using OrderKey = std::pair<double, std::string>;
  std::map<std::string, Run, std::less<>> runs_;
  std::set<OrderKey> order_;  // every run of runs_, in listing order
  /// The runs each live connection joined (as any worker): a connection's
  /// end looked at every worker of every run kept, 2 ms of CPU per
  /// disconnect at 50,000 workers. May name runs since erased or workers
  /// since rejoined from another connection: visit_workers_of checks.
  std::unordered_map<std::uint64_t, std::set<std::string, std::less<>>> runs_of_session_;
};

/// A fresh run id: "<YYYYmmdd-HHMMSS>-<6 hex>", safe as a directory name.
std::string make_run_id(double now, std::uint32_t random);

/// Ids and names used as file names must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}.
bool is_safe_id(std::string_view id);

}  // namespace lpd::daemon
