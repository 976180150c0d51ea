#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/os/proc_stat.h"

namespace lpd::daemon {

/// What one look at a pid listed in the leader's session says of it.
enum class MemberLook {
  kMember,     // alive and still in the session: pinned by its pidfd
  kNotMember,  // the kernel says it is gone, or its pid now belongs to a process outside the session
  kUnknown,    // lpd could not look (EMFILE, ENFILE, ...): it may well still run
};

/// The membership rule, without I/O. `pidfd_error` is pidfd_open's errno
/// (0 when it gave a pidfd); `stat` is /proc/PID/stat read after that, or
/// nullopt with the read's errno in `stat_error`. Only the kernel's "no
/// such process" (is_no_such_process), a zombie, or another session make
/// a pid kNotMember; every other failure is kUnknown, never a death.
MemberLook judge_member(int pidfd_error, const std::optional<ProcStat>& stat, int stat_error, pid_t session);

/// The same rule for a process a scan found in the tree (by ppid or in the
/// tree's cgroup) rather than by session: with its pid pinned it is still
/// a member when it is alive and its start time is the one the scan saw
/// (`scanned_start_time`), or it holds the leader's session.
MemberLook judge_tree_member(int pidfd_error, const std::optional<ProcStat>& stat, int stat_error, pid_t session,
                             std::uint64_t scanned_start_time);

/// KillJob stops a supervised process and everything it started: it finds
/// every process of its tree (see "Which processes" below), holds
/// a pidfd for each so a reused pid can never be hit, sends the signal to
/// each and to the process group, sends SIGKILL to what is left after the
/// grace period, and reports once every member is gone. Each wait is a
/// pidfd or a timer in the event loop.
///
/// It reports only what it saw end. When lpd cannot look at a member (no
/// descriptor for pidfd_open or /proc: EMFILE and friends) or cannot scan
/// the whole session, the kill is not done: it looks again after
/// watch_retry_delay (50 ms doubling to 2 s), pins what it finds then and
/// signals it, and reports only once every member it ever saw is confirmed
/// gone and a complete scan finds no other.
///
/// Which processes: when the launcher put the leader in a cgroup of its
/// own (cgroup.h; found from the leader's /proc/PID/cgroup, so a
/// restarted lpd finds it too), every member of that cgroup, which no
/// unprivileged descendant can leave; SIGKILL is then cgroup.kill, which
/// also reaches what is forked during the kill. Elsewhere (no writable
/// cgroup2: the leader was made the subreaper of its descendants instead),
/// the leader's session plus every descendant of the leader and of each
/// member already pinned, by ppid; SIGKILL then follows stop_order
/// (SIGSTOP all, rescan until nothing new, then SIGKILL), so no child
/// forked during the kill is orphaned out of sight.
class KillJob : public std::enable_shared_from_this<KillJob> {
 public:
  struct Result {
    bool forced = false;  // SIGKILL was needed
    std::size_t members = 0;
    bool cgroup = false;  // the tree was a cgroup (else ppid and session scans)
  };
  using OnDone = std::function<void(const Result&)>;

  /// The caller has checked that `leader` is still the process it started
  /// (pid and start time), so its session id is its own pid.
  KillJob(boost::asio::io_context& io, pid_t leader, int signo, std::chrono::milliseconds grace);
  /// A tree whose leader has exited but whose cgroup still holds members
  /// (a daemonizing server: `pg_ctl start` exits, postgres runs on): every
  /// member of `cgroup_dir` (a cgroup the launcher made, cgroup.h), pinned
  /// and signalled one by one; there is no process group to signal.
  KillJob(boost::asio::io_context& io, std::string cgroup_dir, int signo, std::chrono::milliseconds grace);

  /// Signals the session now and calls `on_done` once, from the event
  /// loop, when every member is confirmed gone.
  void start(OnDone on_done);
  /// Sends the signal again (a second kill request with another signal).
  void resignal(int signo);

  /// Looks in a row that could not see every member (EMFILE...); 0 once one could.
  unsigned failures() const { return failures_; }
  /// Members pinned and awaited now.
  std::size_t members_pinned() const { return members_.size(); }
  /// The cgroup directory of the tree, "" when it has none.
  const std::string& cgroup_dir() const { return cgroup_dir_; }

 private:
  struct Fresh {
    pid_t pid;
    pid_t pgrp;
  };
  /// Scans the session and pins every member not pinned yet; what it could
  /// not look at goes to unsure_ (and look_error_). Returns what it pinned.
  std::vector<Fresh> collect_members();
  void watch(pid_t pid, int pidfd);
  /// `group_vouched`: the caller's check of the leader, just made, vouches
  /// for the group id even when no pinned member holds it.
  void signal_all(int signo, bool group_vouched = false);
  /// Signals members pinned late (after a failed look), unless the group
  /// signal already reached them.
  void signal_fresh(const std::vector<Fresh>& fresh);
  void member_gone(pid_t pid);
  /// Scans again once nothing pinned is left, then settles.
  void look_again();
  /// After a look: retries what it could not see, or reports once nothing is left.
  void settle();
  void retry_later();
  void finish();
  /// The SIGKILL step: cgroup.kill with a cgroup, else stop_order.
  void kill_tree();

  boost::asio::io_context& io_;
  pid_t leader_;  // 0: the leader is gone, only the cgroup is left
  int signo_;
  std::chrono::milliseconds grace_;
  boost::asio::steady_timer grace_timer_;
  boost::asio::steady_timer retry_timer_;
  std::map<pid_t, std::shared_ptr<boost::asio::posix::stream_descriptor>> members_;
  std::set<pid_t> unsure_;  // seen in the session, not pinned: lpd could not look
  int look_error_ = 0;      // why the last look missed something (errno), 0 when it saw all
  unsigned failures_ = 0;
  bool retry_pending_ = false;
  int group_signo_ = 0;     // the last signal the process group got
  std::size_t members_seen_ = 0;
  bool forced_ = false;
  bool done_ = false;
  OnDone on_done_;
  std::string cgroup_dir_;       // BASE/t<creator>-<n>, when the leader has one
  std::string cgroup_relative_;  // the same inside the hierarchy (/proc/PID/cgroup)
};

}  // namespace lpd::daemon
