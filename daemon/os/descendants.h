#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "daemon/os/proc_stat.h"

// Which processes belong to a supervised tree, and in what order lpd stops
// them. The rules are plain functions over a /proc snapshot given as data
// (unit-tested without processes); the scan and the signals are at the
// bottom and in cgroup.h. Used by lpd (KillJob) and by lpd-monitor, so this
// file depends on nothing but the C library.

namespace lpd::daemon {

/// Every live process of a tree in `snapshot`: `root` itself, each process
/// whose parent chain leads to `root` (by ppid), and, when `session` > 0,
/// each process of that session (a member whose parent died and was
/// re-parented to init still holds the session a setsid'd helper gave it).
/// Zombies and dead entries are left out: they cannot be signalled and
/// hold nothing. Ordered top-down: each parent before its children (what a
/// stop without a freezer needs: see stop_order), session-only members
/// last. A ppid loop in garbled data cannot make it run forever.
std::vector<ProcStat> tree_of(const std::vector<ProcStat>& snapshot, pid_t root, pid_t session);

/// The stop rule where no cgroup can freeze a tree: SIGSTOP each member
/// top-down (a stopped parent forks nothing new while lpd walks down), scan
/// again, stop what is new, and only when a scan finds nothing unstopped
/// SIGKILL them all, so no child forked meanwhile can be orphaned to init
/// and escape. Returns the members of `tree` that still need a SIGSTOP,
/// in tree order; empty means the tree is settled and may be killed.
std::vector<pid_t> stop_order(const std::vector<ProcStat>& tree, const std::set<pid_t>& stopped);

/// A decimal pid per line (cgroup.procs, /proc/PID/task/TID/children uses
/// spaces): every number in `text`, in order; anything else is skipped.
std::vector<pid_t> parse_pid_list(std::string_view text);

/// cgroup.events' "populated 0|1" line; nullopt when absent or garbled.
std::optional<bool> parse_cgroup_populated(std::string_view events);

/// The first cgroup2 mount point in /proc/self/mountinfo's text (field 5;
/// the filesystem type follows the " - " separator); nullopt when there is
/// none. Octal escapes (\040 for a space) are decoded.
std::optional<std::string> parse_cgroup2_mount(std::string_view mountinfo);

/// The unified hierarchy's path in /proc/PID/cgroup's text (the "0::PATH"
/// line); nullopt on a cgroup v1-only system.
std::optional<std::string> parse_cgroup2_path(std::string_view proc_cgroup);

/// /proc/PID/cmdline's bytes as one line for a report: NULs between the
/// arguments become spaces, control bytes become '?', at most `max_bytes`
/// (then "..."). Empty for a kernel thread or a zombie.
std::string describe_cmdline(std::string_view cmdline, std::size_t max_bytes = 200);

/// A process found running in a tree whose root has ended.
struct Leftover {
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  std::string argv;  // describe_cmdline of its /proc/PID/cmdline
  /// PYTEST_CURRENT_TEST in its /proc/PID/environ, as found
  /// (read only for the first kMaxLeftoversDescribed; see leftover_test.h).
  std::optional<std::string> pytest_current_test;
};

/// How many leftovers a report lists (and whose environment is read).
constexpr std::size_t kMaxLeftoversDescribed = 100;

// -- I/O ---------------------------------------------------------------------

/// Every process's /proc/PID/stat, one scan. `error`, when given, is set to
/// the errno of the first look that failed for want of something
/// (is_resource_shortage), and then entries may be missing; 0 otherwise.
std::vector<ProcStat> read_process_snapshot(int* error = nullptr);

/// /proc/PID/cmdline as a report line (describe_cmdline); "" when unreadable.
std::string read_cmdline(pid_t pid);

/// The value of `name` in /proc/PID/environ (the environment it was
/// started with; at most kMaxEnvironBytes read); nullopt when absent, cut
/// by that bound, or unreadable (gone, EACCES).
std::optional<std::string> read_environ_value(pid_t pid, std::string_view name);

/// Stops and kills every descendant of the calling process (not itself)
/// by the stop_order rule, then reaps its children until it has none:
/// what lpd-monitor does once the command it ran has ended, being the
/// subreaper of everything the command left. Returns what was found
/// running (pid, start time, argv, PYTEST_CURRENT_TEST), top-down. Blocks until all are reaped.
/// `cgroup_kill_fd` (-1: none) is written "1" first, so a cgroup's members
/// that moved away from the tree still die.
std::vector<Leftover> kill_own_descendants(int cgroup_kill_fd);

}  // namespace lpd::daemon
