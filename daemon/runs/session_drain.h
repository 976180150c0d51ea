#pragma once

#include <cstdint>

namespace lpd::daemon {

/// SessionDrain is the one intended back-edge from a family to the
/// connection layer. A test process writes test.start into its event ring
/// without waiting for lpd; when the process dies, its last test.start may
/// still sit in the ring, written but not yet read. Before JobService
/// judges a process's end (an attempt ended, worker.down) it has that
/// connection's unread messages dispatched, so a crash is pinned on the
/// test that really ran and not on the one before it.
///
/// The drain dispatches messages, which call back into JobService (the
/// test.start handler) while it is deciding: callers collect what to drain
/// first and look their records up again afterwards.
class SessionDrain {
 public:
  virtual ~SessionDrain() = default;
  /// Dispatches what connection `session_id` has written into its event
  /// ring so far (Session::drain_ring); nothing when it is gone.
  virtual void drain(std::uint64_t session_id) = 0;
};

}  // namespace lpd::daemon
