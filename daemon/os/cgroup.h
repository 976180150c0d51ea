#pragma once

#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

// A cgroup v2 per supervised tree: a process lpd put in one cannot leave it
// (moving needs write access to cgroup.procs files lpd owns, so only root
// can), and cgroup.kill ends every member at once, forks racing the kill
// included. Plain POSIX, no logging: lpd-monitor links it too.

namespace lpd::daemon {

/// Where lpd makes its cgroups: `dir` is "<cgroup2 mount><lpd's own
/// cgroup>/lpd.supervised" (created when missing), `relative` the same
/// path inside the hierarchy (what /proc/PID/cgroup shows). `dir` is empty
/// when this process cannot use cgroups, and `why_not` says why (no cgroup2
/// mount, lpd's own cgroup not writable, LPD_CGROUPS=off...).
struct CgroupBase {
  std::string dir;
  std::string relative;
  std::string mount;  // the cgroup2 mount point: dir = mount + relative
  std::string why_not;
  bool usable() const { return !dir.empty(); }
};

/// Detected once per process, on first use: systemd's service with
/// Delegate=yes, a user daemon inside its delegated subtree, or root on
/// any writable cgroup2 mount (the hybrid /sys/fs/cgroup/unified too).
/// LPD_CGROUPS=off in the environment turns it off (tests of the
/// subreaper path, or a host where cgroups are managed by someone else).
const CgroupBase& supervision_cgroup_base();

/// A new cgroup made for one launch, before the fork: the child writes "0"
/// to `procs_fd` (close-on-exec) before it execs. Named
/// "t<creator pid>-<n>" (cgroup v2 directories cannot be renamed), unique
/// by mkdir's atomicity; lpd finds a tree's cgroup again from its root's
/// /proc/PID/cgroup (tree_cgroup_of).
struct NewCgroup {
  std::string dir;
  int procs_fd = -1;  // owned; close-on-exec
};

/// mkdir BASE/t<pid>-<n> and opens its cgroup.procs. nullopt with errno set
/// when it cannot.
std::optional<NewCgroup> make_launch_cgroup(const CgroupBase& base);

/// The rule for sweeping `base`: true for a directory name made by
/// make_launch_cgroup ("t<pid>-<n>") whose creator is not running
/// (`creator_alive` says so of a pid) or is the sweeping process itself
/// (`self`), which sweeps only between launches. Another live creator's
/// cgroup may be empty for an instant before its child joins: never swept.
bool sweepable_cgroup_name(const std::string& name, pid_t self, bool (*creator_alive)(pid_t));

/// True when `dir` is BASE/t<pid>-<n>, a name make_launch_cgroup gives,
/// directly under a usable `base`: what a record read back may name.
bool is_launch_cgroup(const CgroupBase& base, const std::string& dir);

/// Removes every empty cgroup of `base` that sweepable_cgroup_name allows
/// (rmdir refuses a populated one, which stays).
void remove_empty_cgroups(const CgroupBase& base);

/// The cgroup directory of the tree whose root is `pid`: its unified
/// cgroup when that is a cgroup made in `base`; "" otherwise (no cgroup,
/// or the process is gone).
std::string tree_cgroup_of(const CgroupBase& base, pid_t pid);

/// The pids in DIR/cgroup.procs; empty with `*error` set when unreadable
/// (ENOENT: the cgroup is gone).
std::vector<pid_t> cgroup_members(const std::string& dir, int* error = nullptr);

/// True when /proc/PID/cgroup's unified line names `relative` exactly.
bool process_in_cgroup(pid_t pid, const std::string& relative);

/// Kills every member: cgroup.kill (Linux 5.14), else freezes the cgroup,
/// SIGKILLs each member and thaws it (a frozen member cannot fork a new one
/// in between; SIGKILL reaches frozen tasks). False with errno when the
/// cgroup cannot be written.
bool kill_cgroup(const std::string& dir);

/// cgroup.events' "populated": nullopt when unreadable.
std::optional<bool> cgroup_populated(const std::string& dir);

}  // namespace lpd::daemon
