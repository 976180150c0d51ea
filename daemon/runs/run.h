#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include "daemon/core/bounded_field.h"

namespace lpd::daemon {

/// Worker is one process taking part in a run: the pytest controller
/// ("controller") or an xdist worker ("gw0", ...), each on its own connection.
struct Worker {
  std::string worker_id;
  pid_t pid = 0;
  std::uint64_t session_id = 0;  // 0 once its connection is gone
  bool finished = false;         // said run.end before leaving (a clean end)
};

/// Run is one test session: what pytest-live-pause calls a run, and what
/// `lpctl run` supervises. It is active until its controller leaves.
struct Run {
  std::string run_id;
  uid_t owner = static_cast<uid_t>(-1);
  pid_t pid = 0;  // the controller's pid
  std::string hostname;
  std::string cwd;
  std::vector<std::string> argv;
  double created_at = 0;
  double ended_at = 0;
  bool active = true;
  /// Started by `lpctl run`: the run ends when its job is done, not when
  /// the controller's connection closes (pytest may be re-run for retries).
  bool supervised = false;
  std::map<std::string, Worker> workers;
  // -- how a supervised run ended, for run.list (lpctl
  // runs -a): its exit code (lpctl run's), the signal lpctl ends by, and
  // one word: passed, failed, crashed, killed or stopped. Unset for a run
  // not yet done, or not started by lpctl run (no one saw its exit).
  std::optional<int> returncode;
  std::optional<int> signal;
  std::string result;

  nlohmann::json to_json() const;
  static Run from_json(const nlohmann::json& j);
};

/// The most bytes of argv a run keeps (each argument's length plus one).
inline constexpr std::size_t kMaxArgvBytes = 64 * 1024;

/// `argv` as a run keeps it (run.register's, shown by run.list): its
/// leading arguments while they fit `most_bytes` (each counted with one
/// byte more, its separator), then, when any is left out, one argument
/// saying how many and how large ("... 70 more argument(s), 1120140 bytes,
/// not kept"). The shim cuts its argv by the same rule
/// (messages.bounded_argv), so lpd's copy and the shim's agree.
std::vector<std::string> bounded_argv(std::vector<std::string> argv, std::size_t most_bytes = kMaxArgvBytes);

}  // namespace lpd::daemon
