#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>


namespace lpd::daemon {

/// Who a launched command runs as, applied in the child before exec.
struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
};

/// LaunchSpec is everything needed to start one command the way lpd starts
/// commands: supervised helpers now, `lpctl run` jobs and commands run on
/// behalf of another user later.
struct LaunchSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in the PATH of `env`
  std::string cwd;                // absolute; checked before spawning
  std::vector<std::string> env;   // the child's whole environment, "K=V" each
  int stdout_fd = -1;             // -1: /dev/null. Not closed by the launcher.
  int stderr_fd = -1;             // -1: /dev/null
  /// When set, the child switches to these before exec (setgroups, setgid,
  /// setuid). Needs lpd to be root; unset means "as lpd itself".
  std::optional<Credentials> credentials;
  /// setsid(): its own session and process group, so lpd's death does not
  /// take it along and a kill can reach its whole tree.
  bool new_session = true;
  /// Keep the command's whole tree where lpd can find and kill it: a
  /// cgroup of its own when lpd can make one (cgroup.h), else the command becomes
  /// the child subreaper of its descendants (PR_SET_CHILD_SUBREAPER is kept
  /// across exec), so a double-forked or setsid'd descendant stays below it
  /// by ppid instead of going to init. False for lpd-monitor, which does
  /// both itself for its command.
  bool contain_tree = true;
  /// Signals the command starts with blocked (the mask is kept across
  /// exec, and so are signals pending). For lpd-monitor: a stop that
  /// arrives before it has a command to forward it to waits instead of
  /// being lost, or killing the monitor itself. Empty: nothing blocked.
  std::vector<int> blocked_signals;
};

/// A started process. lpd is its parent and must reap it (through `pidfd`).
struct Launched {
  pid_t pid = 0;
  int pidfd = -1;                // owned by the caller; close-on-exec
  std::uint64_t start_time = 0;  // from /proc/PID/stat, to tell it from a later reuse of its pid
  std::string executable;        // the resolved path that was executed
  /// The tree's own cgroup (cgroup.h), "" when it has none: what is left of
  /// the tree after its leader exits (a daemonizing server) is found there.
  std::string cgroup_dir;
};

/// The seam between lpd's rules and the operating system's process
/// creation, so services can be tested with a fake that forks nothing.
class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  /// Throws protocol::Error: kNotFound when the command or the working
  /// directory does not exist (checked before anything is spawned),
  /// kPermissionDenied / kInternal when the exec itself fails.
  virtual Launched launch(const LaunchSpec& spec) = 0;
};

/// The real launcher: a child that shares lpd's memory until its exec
/// (spawn_sharing_memory: no fork, whose copy-on-write cost lpd a page
/// fault per heap page afterwards) resets the signal dispositions (lpd
/// ignores SIGPIPE; a child must not inherit that) and mask, redirects
/// stdio, joins the tree's cgroup, calls setsid and drops credentials.
class SystemProcessLauncher : public ProcessLauncher {
 public:
  /// Logs once how trees are kept here: cgroups (and where) or subreapers (and why).
  SystemProcessLauncher();
  Launched launch(const LaunchSpec& spec) override;

 private:
};

/// Resolves argv[0] the way a shell would: a name with a slash relative to
/// `cwd`, a bare name through the PATH found in `env` (not lpd's own PATH).
/// Throws protocol::Error(kNotFound) "command not found: NAME".
std::string resolve_executable(const std::string& command, const std::vector<std::string>& env,
                               const std::string& cwd);

}  // namespace lpd::daemon
