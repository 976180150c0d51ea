#include "daemon/crashes/crash_rules.h"

namespace lpd::daemon {

bool same_death(const Crash& recorded, int attempt, pid_t pid) {
  return pid != 0 && recorded.attempt == attempt && recorded.pid == pid;
}

Crash command_crash(const std::string& run_id, const std::string& nodeid, pid_t pid, int signal, int attempt,
                    uid_t owner, double started_at, double now) {
  Crash c;
  c.run_id = run_id;
  c.nodeid = nodeid;
  c.where = "command";
  c.worker_id = "command";
  c.pid = pid;
  c.signal = signal;
  c.reason = "killed by " + signal_name(signal) + " (the command reported no tests)";
  c.crash_time = now;
  c.duration = now - started_at;
  c.attempt = attempt;
  c.owner = owner;
  return c;
}

Crash unattributed_command_crash(const std::string& run_id, pid_t pid, int signal, int attempt, uid_t owner,
                                 double now) {
  Crash c;
  c.run_id = run_id;
  c.where = "session";
  c.worker_id = "controller";
  c.pid = pid;
  c.signal = signal;
  c.reason = "killed by " + signal_name(signal) + std::string(kWhileLpdAway);
  c.crash_time = now;
  c.attempt = attempt;
  c.owner = owner;
  return c;
}

Crash crash_told_by_controller(const std::string& run_id, const std::string& worker_id, const std::string& nodeid,
                               pid_t pid, std::optional<std::int64_t> returncode, int attempt, uid_t owner,
                               double now) {
  Crash c;
  c.run_id = run_id;
  c.nodeid = nodeid;
  c.where = "test";
  c.worker_id = worker_id;
  c.pid = pid;
  if (returncode && *returncode < 0) c.signal = static_cast<int>(-*returncode);
  if (returncode && *returncode >= 0) c.exit_code = static_cast<int>(*returncode);
  c.reason = (c.signal ? "killed by " + signal_name(*c.signal)
                       : "exited with code " + (returncode ? std::to_string(*returncode) : std::string("?"))) +
             " while running " + nodeid + " (told by the xdist controller: lpd did not see this worker end)";
  c.crash_time = now;
  c.attempt = attempt;
  c.owner = owner;
  return c;
}

Crash crash_not_kept_marker(const Crash& refused, const std::string& refuse_budget) {
  Crash marker;
  marker.run_id = refused.run_id;
  marker.attempt = refused.attempt;
  marker.owner = refused.owner;
  marker.crash_time = refused.crash_time;
  marker.where = "session";
  marker.reason = "lpd keeps no more crash records of uid " + std::to_string(refused.owner) + ": theirs hold " +
                  refuse_budget +
                  " (lpctl prune removes old runs); this run's crashes from here on are named in lpd's log "
                  "only, the first of them pid " +
                  std::to_string(refused.pid) + (refused.signal ? " (" + signal_name(*refused.signal) + ")" : "");
  return marker;
}

}  // namespace lpd::daemon
