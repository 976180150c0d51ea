#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace lpd::daemon {

/// RingPoller reads the event rings of the shims that are writing, all on
/// one timer. A shim wakes lpd (a blank line on its socket) only when the
/// ring's read-by word does not promise a read soon; a busy suite's rings
/// are then read on this one tick, every `window`, with one journal write
/// per tick for all of them, instead of a socket wake-up and a timer of
/// each process's own every window (four wake-ups and as many journal
/// writes per window under `pytest -n 2`).
///
/// Rules (protocol/README.md, "The event ring"):
/// - keep_reading() (a wake-up, or any bytes on the connection) has the ring
///   read at the next tick, at most a window away, and on every tick after
///   until one that finds nothing new at least a window after the wake-up:
///   a shim that wakes lpd at most once per window (one that cannot use
///   the read-by word) has what it wrote after a wake-up read then.
/// - While a ring is read on the ticks, its read-by word says when a read
///   will start (at or after it), so its shim sends nothing. After a tick
///   that found records, the word is the tick after next's start minus a
///   window, plus grace() (a fifth of a window): the next tick starts a
///   little late and its read a little later still, and a shim writing
///   then would otherwise see the word pass and wake lpd just before a
///   read it did not need (one extra wake-up and journal write per tick
///   for every busy ring); the tick after next is that promise's read.
/// - A ring leaves only after an empty read once its word is past: after
///   an empty tick the word is the bare next tick, so a ring that leaves
///   keeps a past time, and the next record wakes lpd.
class RingPoller {
 public:
  using Clock = std::chrono::steady_clock;

  /// One connection with a ring, as the poller sees it.
  class Source {
   public:
    virtual ~Source() = default;
    /// Reads and dispatches the ring's new records without publishing the
    /// read position; how many, or nullopt when there is no ring any more.
    virtual std::optional<std::size_t> read_ring() = 0;
    /// Publishes the read position read_ring() reached.
    virtual void commit_ring() = 0;
    /// Writes the ring's read-by word (CLOCK_MONOTONIC ns).
    virtual void promise_ring_read_by(std::uint64_t monotonic_ns) = 0;
  };

  /// `end_of_batch`: makes what the records recorded durable (lpd's
  /// journals); called once per tick that read records, before any read
  /// position is published.
  RingPoller(boost::asio::any_io_executor executor, std::chrono::milliseconds window,
             std::function<void()> end_of_batch);
  RingPoller(const RingPoller&) = delete;
  RingPoller& operator=(const RingPoller&) = delete;

  /// `source` was woken now: read its ring on the ticks (see above).
  void keep_reading(const std::shared_ptr<Source>& source);

  /// Rings read on the ticks now (for tests).
  std::size_t polled() const { return members_.size(); }

  /// `t` as the read-by word says it: CLOCK_MONOTONIC in nanoseconds.
  static std::uint64_t monotonic_ns(Clock::time_point t);

  /// How far past the next tick a busy ring's read-by word may be (a fifth
  /// of the window): less than a window, so the tick after next keeps it.
  std::chrono::milliseconds grace() const { return window_ / 5; }

 private:
  struct Member {
    std::weak_ptr<Source> source;
    Clock::time_point hold_until;  // read on every tick until an empty one at or after this
    Clock::time_point promised;    // the read-by word last written
  };
  /// Writes `member`'s read-by word and remembers it.
  static void promise(Member& member, Source& source, Clock::time_point at);
  void arm(Clock::time_point at);
  void tick();

  boost::asio::steady_timer timer_;
  std::chrono::milliseconds window_;
  std::function<void()> end_of_batch_;
  std::vector<Member> members_;
  std::optional<Clock::time_point> next_tick_;  // set while the timer is armed
};

}  // namespace lpd::daemon
