#pragma once

#include <cstdint>
#include <optional>

#include <sys/types.h>

#include <boost/asio/posix/stream_descriptor.hpp>

#include "daemon/core/unique_fd.h"
#include "daemon/os/proc_stat.h"

namespace lpd::daemon {

/// Whether the process behind `pidfd` has ended: its pidfd polls readable
/// now (a zombie, or reaped). One poll(2) with no wait. Every wait on a
/// pidfd asks this before it believes the event loop: Boost 1.81's epoll
/// reactor can hand a new descriptor the still-queued event of a destroyed
/// one (it reuses the freed state at once), which looks like an exit.
bool process_has_ended(int pidfd);

/// Waits on `descriptor` (a pidfd) until its process has ended, then calls
/// `on_end(error_code{})`; a readiness the pidfd does not confirm (see
/// process_has_ended) waits again. On cancel or destruction of the
/// descriptor `on_end` gets the error and must not touch the descriptor,
/// which the caller keeps alive until then.
template <typename OnEnd>
void async_wait_for_end(boost::asio::posix::stream_descriptor& descriptor, OnEnd on_end) {
  descriptor.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                        [&descriptor, on_end = std::move(on_end)](boost::system::error_code ec) mutable {
                          if (!ec && !process_has_ended(descriptor.native_handle())) {
                            async_wait_for_end(descriptor, std::move(on_end));  // another descriptor's event
                            return;
                          }
                          on_end(ec);
                        });
}

/// pidfd_open(2) with close-on-exec; -1 with errno when there is no such process.
int open_process_fd(pid_t pid);
/// A pidfd for the process recorded as (pid, start time), taken before the
/// check so that the pid cannot change hands between the two.
struct PinnedProcess {
  UniqueFd pidfd;     // open (close-on-exec) only when kAlive
  Liveness liveness = Liveness::kUnknown;
  int error = 0;      // the errno behind kUnknown (EMFILE...): lpd could not look
  std::uint64_t start_time = 0;  // read with the pid pinned (kAlive only)
};

/// Opens and checks: kAlive with a pidfd; kGone or kReused when the
/// kernel says the recorded process is no more; kUnknown when a descriptor
/// or a /proc read failed for any other reason. Never takes an error for a
/// death.
PinnedProcess pin_process(pid_t pid, std::uint64_t start_time);

/// pidfd_send_signal(2): signals exactly the process the fd stands for,
/// even if its pid number was reused since.
bool signal_process_fd(int pidfd, int signo);

}  // namespace lpd::daemon
