#include "daemon/os/kill_job.h"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "daemon/os/exit_watch.h"
#include "daemon/os/cgroup.h"
#include "daemon/os/descendants.h"
#include "daemon/os/pidfd_watch.h"
#include "daemon/core/resource_shortage.h"
#include "daemon/core/unique_fd.h"

namespace lpd::daemon {

MemberLook judge_member(int pidfd_error, const std::optional<ProcStat>& stat, int stat_error, pid_t session) {
  if (pidfd_error != 0) return is_no_such_process(pidfd_error) ? MemberLook::kNotMember : MemberLook::kUnknown;
  if (!stat) return is_no_such_process(stat_error) ? MemberLook::kNotMember : MemberLook::kUnknown;
  // With the pid pinned, another session means the pid changed hands
  // after the scan: the process the scan saw is gone.
  if (stat->gone() || stat->session != session) return MemberLook::kNotMember;
  return MemberLook::kMember;
}

MemberLook judge_tree_member(int pidfd_error, const std::optional<ProcStat>& stat, int stat_error, pid_t session,
                             std::uint64_t scanned_start_time) {
  const MemberLook by_session = judge_member(pidfd_error, stat, stat_error, session);
  if (by_session != MemberLook::kNotMember || !stat || stat->gone()) return by_session;
  // Another session: still the very process the scan saw in the tree?
  return scanned_start_time != 0 && stat->start_time == scanned_start_time ? MemberLook::kMember
                                                                          : MemberLook::kNotMember;
}

KillJob::KillJob(boost::asio::io_context& io, pid_t leader, int signo, std::chrono::milliseconds grace)
    : io_(io), leader_(leader), signo_(signo), grace_(grace), grace_timer_(io), retry_timer_(io) {
  // The caller has just checked the leader: the cgroup it is in now is its
  // tree's (the launcher made it; the leader cannot leave it unless root).
  const auto& base = supervision_cgroup_base();
  cgroup_dir_ = tree_cgroup_of(base, leader);
  if (!cgroup_dir_.empty()) cgroup_relative_ = cgroup_dir_.substr(base.mount.size());
}

KillJob::KillJob(boost::asio::io_context& io, std::string cgroup_dir, int signo, std::chrono::milliseconds grace)
    : io_(io), leader_(0), signo_(signo), grace_(grace), grace_timer_(io), retry_timer_(io),
      cgroup_dir_(std::move(cgroup_dir)) {
  const auto& base = supervision_cgroup_base();
  if (cgroup_dir_.rfind(base.mount, 0) == 0) cgroup_relative_ = cgroup_dir_.substr(base.mount.size());
}

void KillJob::start(OnDone on_done) {
  on_done_ = std::move(on_done);
  collect_members();
  // Even when lpd could pin no member (out of descriptors) the group gets
  // the signal: the caller has just checked the leader, so the group id is
  // still its own.
  if (signo_ == SIGKILL) {
    if (leader_ > 0) ::kill(-leader_, SIGKILL);
    group_signo_ = SIGKILL;
    kill_tree();
  } else {
    signal_all(signo_, /*group_vouched=*/leader_ > 0);
  }
  if (signo_ != SIGKILL) {
    grace_timer_.expires_after(grace_);
    grace_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->done_) return;
      self->forced_ = true;
      self->signo_ = SIGKILL;
      self->kill_tree();  // also whatever was forked meanwhile
      // What is still unsure gets SIGKILL once it is pinned (signal_fresh).
      self->settle();
    });
  }
  if (!unsure_.empty() || look_error_ != 0) {
    retry_later();
  } else if (members_.empty()) {
    // Already gone: report from the event loop, like every other outcome.
    boost::asio::post(io_, [self = shared_from_this()] { self->look_again(); });
  }
}

void KillJob::resignal(int signo) {
  if (done_) return;
  if (signo == SIGKILL) {
    forced_ = true;
    signo_ = SIGKILL;
    kill_tree();
    settle();
    return;
  }
  signal_all(signo);
}

// Why a member lpd cannot look at is kept and looked at again rather than
// the kill failed with "unavailable": by then the kill is under way (the
// record says stopping, the group has the signal, other members may be
// gone) and cannot be taken back, so an error would leave the requester
// with a half-killed tree and no way to learn when it ends. Waiting costs
// nothing but a timer, the group signal reaches unpinned members anyway,
// and the reply then says the truth: every member is gone.
std::vector<KillJob::Fresh> KillJob::collect_members() {
  int scan_error = 0;
  // Candidates with the start time the scan saw (0: found by session or
  // cgroup, checked afresh once pinned).
  std::map<pid_t, std::uint64_t> candidates;
  if (!cgroup_dir_.empty()) {
    int error = 0;
    for (pid_t pid : cgroup_members(cgroup_dir_, &error)) candidates.emplace(pid, 0);
    // ENOENT: the cgroup is gone, and with it every member.
    if (error != 0 && error != ENOENT) scan_error = error;
  }
  {
    // The session (and, without a cgroup, the ppid tree under the leader
    // and under every member pinned so far: a member's children re-parented
    // to init once their parent died are still found from the member).
    int snapshot_error = 0;
    const auto snapshot = read_process_snapshot(&snapshot_error);
    if (scan_error == 0) scan_error = snapshot_error;
    std::vector<pid_t> roots;
    if (leader_ > 0) roots.push_back(leader_);
    if (cgroup_dir_.empty())
      for (const auto& [pid, descriptor] : members_) roots.push_back(pid);
    for (pid_t root : roots) {
      for (const ProcStat& member : tree_of(snapshot, root, leader_)) {
        if (!cgroup_dir_.empty() && member.session != leader_) continue;  // the cgroup says who else
        candidates.emplace(member.pid, member.start_time);
      }
    }
  }
  // What could not be looked at before is looked at again, listed or not:
  // the scan itself may have missed it for the same reason.
  for (pid_t pid : unsure_) candidates.emplace(pid, 0);
  std::set<pid_t> still_unsure;
  int error = scan_error;
  std::vector<Fresh> fresh;
  for (const auto& [pid, scanned_start_time] : candidates) {
    if (members_.count(pid) || still_unsure.count(pid)) continue;
    UniqueFd fd(open_process_fd(pid));
    const int open_error = fd ? 0 : errno;
    std::optional<ProcStat> stat;
    int stat_error = 0;
    if (fd) {
      // The fd pins the pid: whatever /proc says now is about the process
      // the fd stands for.
      stat = read_proc_stat(pid);
      stat_error = stat ? 0 : errno;
    }
    MemberLook look = judge_tree_member(open_error, stat, stat_error, leader_, scanned_start_time);
    if (look == MemberLook::kNotMember && stat && !stat->gone() && !cgroup_dir_.empty() &&
        process_in_cgroup(pid, cgroup_relative_))
      look = MemberLook::kMember;
    if (look == MemberLook::kMember) {
      watch(pid, fd.release());
      fresh.push_back(Fresh{pid, stat->pgrp});
      continue;
    }
    fd.reset();
    if (look == MemberLook::kUnknown) {
      still_unsure.insert(pid);
      if (error == 0) error = open_error != 0 ? open_error : stat_error;
    }
  }
  unsure_ = std::move(still_unsure);
  look_error_ = error;
  return fresh;
}

void KillJob::kill_tree() {
  if (!cgroup_dir_.empty()) {
    // One write ends every member, and whatever they fork meanwhile.
    if (!kill_cgroup(cgroup_dir_) && errno != ENOENT)
      spdlog::warn("kill of pid {}: cannot kill cgroup {}: {}; signalling its members one by one", leader_,
                   cgroup_dir_, std::strerror(errno));
    collect_members();
    signal_all(SIGKILL);
    return;
  }
  // No freezer: stop every member top-down, rescan until a scan finds
  // nothing new (a stopped process forks nothing), then SIGKILL them all.
  for (const auto& [pid, descriptor] : members_) signal_process_fd(descriptor->native_handle(), SIGSTOP);
  for (int round = 0; round < 1000; ++round) {
    const auto fresh = collect_members();
    if (fresh.empty()) break;
    for (const Fresh& member : fresh) {
      const auto it = members_.find(member.pid);
      if (it != members_.end()) signal_process_fd(it->second->native_handle(), SIGSTOP);
    }
  }
  signal_all(SIGKILL);
}

void KillJob::watch(pid_t pid, int pidfd) {
  auto descriptor = std::make_shared<boost::asio::posix::stream_descriptor>(io_, pidfd);
  members_.emplace(pid, descriptor);
  ++members_seen_;
  async_wait_for_end(*descriptor, [self = shared_from_this(), pid](boost::system::error_code ec) {
    if (ec) return;
    self->member_gone(pid);
  });
}

void KillJob::signal_all(int signo, bool group_vouched) {
  for (const auto& [pid, descriptor] : members_) signal_process_fd(descriptor->native_handle(), signo);
  // Members we have not seen yet (forked after the scan, or not pinned
  // for want of descriptors) are in the group. While any member lives the
  // group id cannot be reused.
  // No leader (an orphaned cgroup): no group either; kill(0) would be lpd's own.
  if (leader_ > 0 && (!members_.empty() || group_vouched)) {
    ::kill(-leader_, signo);
    group_signo_ = signo;
  }
}

void KillJob::signal_fresh(const std::vector<Fresh>& fresh) {
  for (const Fresh& member : fresh) {
    // A member of the group already had this signal: twice could make it
    // act twice (a second SIGINT cuts a clean shutdown short).
    if (member.pgrp == leader_ && group_signo_ == signo_) continue;
    const auto it = members_.find(member.pid);
    if (it != members_.end()) signal_process_fd(it->second->native_handle(), signo_);
  }
}

void KillJob::member_gone(pid_t pid) {
  if (done_) return;
  members_.erase(pid);
  // The retry, when one is due, looks at everything again itself.
  if (!members_.empty() || retry_pending_) return;
  look_again();
}

void KillJob::look_again() {
  if (done_) return;
  // Something may have been forked after the last scan: look once more.
  collect_members();
  if (!members_.empty()) signal_all(signo_);  // only what this look found is pinned
  settle();
}

void KillJob::settle() {
  if (done_) return;
  if (!unsure_.empty() || look_error_ != 0) {
    retry_later();
    return;
  }
  if (failures_ > 0) {
    spdlog::info("kill of pid {}: sees every member of its session again after {} failed look(s)", leader_,
                 failures_);
    failures_ = 0;
  }
  if (members_.empty()) finish();
}

void KillJob::retry_later() {
  if (retry_pending_) return;
  ++failures_;
  const auto delay = watch_retry_delay(failures_);
  // Said once per outage, not at every attempt: a long one must not flood the log.
  if (failures_ == 1)
    spdlog::warn("kill of pid {}: cannot look at every member of its session ({}); not taking that for "
                 "their end, looking again in {} ms",
                 leader_, describe_shortage(look_error_), delay.count());
  retry_pending_ = true;
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    self->retry_pending_ = false;
    if (ec || self->done_) return;
    self->signal_fresh(self->collect_members());
    self->settle();
  });
}

void KillJob::finish() {
  done_ = true;
  // Empty now (every member seen gone, a last scan found none): the
  // cgroup goes with its tree. A failure leaves an empty directory that
  // the next launch's sweep removes.
  if (!cgroup_dir_.empty()) ::rmdir(cgroup_dir_.c_str());
  grace_timer_.cancel();
  retry_timer_.cancel();
  if (on_done_) {
    auto callback = std::move(on_done_);
    on_done_ = nullptr;
    callback(Result{forced_, members_seen_, !cgroup_dir_.empty()});
  }
}

}  // namespace lpd::daemon
