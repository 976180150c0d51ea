#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <sys/types.h>

#include "daemon/crashes/crash.h"

namespace lpd::daemon {

// The crash records lpd makes of deaths no test process's own activity
// explains (that one is WorkerActivity::crash_on). Plain rules, no I/O:
// JobService::record_crash stores what they make.

/// Whether `recorded` is the death of process `pid` in `attempt`: a
/// restarted lpd may hear again of a death it recorded before (a replayed
/// worker.down, a re-adopted attempt's end). pid 0 (not known) is nobody.
bool same_death(const Crash& recorded, int attempt, pid_t pid);

/// The crash of a supervised command that reported no tests and died of
/// `signal`: pinned on its one testcase `nodeid` (command_test_name), which
/// ran from `started_at` (the job's creation) to `now`.
Crash command_crash(const std::string& run_id, const std::string& nodeid, pid_t pid, int signal, int attempt,
                    uid_t owner, double started_at, double now);

/// The crash of a command that reported tests and died of `signal` while
/// no process of it could say which test ran (lpd was restarting and the
/// controller never came back): pinned on no test, so the report cannot
/// come out green beside an exit by a signal.
Crash unattributed_command_crash(const std::string& run_id, pid_t pid, int signal, int attempt, uid_t owner,
                                 double now);

/// The record a run gets in place of the crashes its owner's budget cannot
/// hold (CrashStore::kRefuseBytesPerOwner, `refuse_budget` its text, "96
/// MiB"): on no test (an error outside tests in the JUnit, and "not run: a
/// test process crashed (...)" for tests without a result), one per run and
/// attempt (pid 0), naming `refused`, the first crash not kept.
Crash crash_not_kept_marker(const Crash& refused, const std::string& refuse_budget);

/// worker.crashed: an xdist controller says worker `worker_id` (pid, 0 when
/// not known) died running `nodeid`, as pytest-xdist's returncode says
/// (negative: killed by that signal; nullopt: not known). What lpd records
/// when it did not see that worker end itself.
Crash crash_told_by_controller(const std::string& run_id, const std::string& worker_id, const std::string& nodeid,
                               pid_t pid, std::optional<std::int64_t> returncode, int attempt, uid_t owner,
                               double now);

}  // namespace lpd::daemon
