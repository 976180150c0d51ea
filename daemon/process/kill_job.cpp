#include "daemon/process/kill_job.h"

#include <unistd.h>

#include <csignal>

#include <boost/asio/post.hpp>

#include "daemon/process/pidfd_watch.h"
#include "daemon/process/proc_stat.h"

namespace lpd::daemon {

KillJob::KillJob(boost::asio::io_context& io, pid_t leader, int signo, std::chrono::milliseconds grace)
    : io_(io), leader_(leader), signo_(signo), grace_(grace), grace_timer_(io) {}

void KillJob::start(OnDone on_done) {
  on_done_ = std::move(on_done);
  collect_members();
  signal_all(signo_);
  if (signo_ != SIGKILL) {
    grace_timer_.expires_after(grace_);
    grace_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->done_) return;
      self->forced_ = true;
      self->signo_ = SIGKILL;
      self->collect_members();  // also whatever was forked meanwhile
      self->signal_all(SIGKILL);
    });
  }
  if (members_.empty()) {
    // Already gone: report from the event loop, like every other outcome.
    boost::asio::post(io_, [self = shared_from_this()] { self->member_gone(0); });
  }
}

void KillJob::resignal(int signo) {
  if (done_) return;
  signal_all(signo);
}

void KillJob::collect_members() {
  auto pids = session_members(leader_);
  // The leader may already be a zombie (not listed) or not yet reaped.
  for (pid_t pid : pids) {
    if (members_.count(pid)) continue;
    const int fd = open_process_fd(pid);
    if (fd < 0) continue;
    // Between the /proc scan and pidfd_open the pid could have changed
    // hands; now that the fd pins it, check it is still in the session.
    const auto stat = read_proc_stat(pid);
    if (!stat || stat->session != leader_) {
      ::close(fd);
      continue;
    }
    watch(pid, fd);
  }
}

void KillJob::watch(pid_t pid, int pidfd) {
  auto descriptor = std::make_shared<boost::asio::posix::stream_descriptor>(io_, pidfd);
  members_.emplace(pid, descriptor);
  ++members_seen_;
  descriptor->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                         [self = shared_from_this(), pid](boost::system::error_code ec) {
                           if (ec) return;
                           self->member_gone(pid);
                         });
}

void KillJob::signal_all(int signo) {
  for (const auto& [pid, descriptor] : members_) signal_process_fd(descriptor->native_handle(), signo);
  // Members we have not seen yet (forked after the scan) are in the group.
  // While any member lives the group id cannot be reused.
  if (!members_.empty()) ::kill(-leader_, signo);
}

void KillJob::member_gone(pid_t pid) {
  if (done_) return;
  members_.erase(pid);
  if (!members_.empty()) return;
  // Something may have been forked after the last scan: look once more.
  collect_members();
  if (!members_.empty()) {
    signal_all(signo_);
    return;
  }
  done_ = true;
  grace_timer_.cancel();
  if (on_done_) {
    auto callback = std::move(on_done_);
    on_done_ = nullptr;
    callback(Result{forced_, members_seen_});
  }
}

}  // namespace lpd::daemon
