#pragma once

#include <chrono>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/crashes/crash_store.h"

namespace lpd::daemon {

/// How long CrashRetry waits before its next try after `failures` tries in
/// a row failed: 1 s doubling to 30 s. A full disk is freed by a person or
/// a cleanup job, in seconds to hours; a try costs one open and one write,
/// so 30 s bounds both the wasted work and the delay after space returns.
/// Plain rule, no I/O.
std::chrono::milliseconds crash_retry_delay(unsigned failures);

/// CrashRetry writes the crash records CrashStore kept in memory (a full or
/// failing state directory) once the disk takes them again. It waits on a
/// timer (crash_retry_delay), never polls; a new crash tries at once anyway
/// (CrashStore::append flushes what waits first, in order). The timer is
/// armed only while records wait, and stands down as soon as a write,
/// whoever made it, succeeded.
class CrashRetry : public CrashStore::FlushWatcher {
 public:
  /// `crashes` tells it of each flush: give this to its constructor
  /// (CrashStore's `flushes`).
  CrashRetry(boost::asio::io_context& io, CrashStore& crashes);
  CrashRetry(const CrashRetry&) = delete;
  CrashRetry& operator=(const CrashRetry&) = delete;

  /// lpd is stopping: one more try, then what could still not be written
  /// is logged one record a line (run, test, pid, reason), so a record the
  /// disk refused to the end is not lost without a trace.
  void last_try();

  /// Tries so far in the current outage (0 when nothing waits).
  unsigned failures() const { return failures_; }
  bool armed() const { return armed_; }

  /// CrashStore::FlushWatcher: arms the timer on false, stands down on true.
  void flushed(bool written) override;
  /// CrashStore::FlushWatcher: posts `sync` to the event loop, to run after
  /// the handlers already ready (a burst of exits is one epoll wake-up).
  bool sync_later(std::function<void()> sync) override;

 private:
  void arm();

  boost::asio::io_context& io_;
  CrashStore& crashes_;
  boost::asio::steady_timer timer_;
  unsigned failures_ = 0;
  bool armed_ = false;
};

}  // namespace lpd::daemon
