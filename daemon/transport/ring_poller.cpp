#include "daemon/transport/ring_poller.h"

#include <algorithm>

namespace lpd::daemon {

RingPoller::RingPoller(boost::asio::any_io_executor executor, std::chrono::milliseconds window,
                       std::function<void()> end_of_batch)
    : timer_(executor), window_(window), end_of_batch_(std::move(end_of_batch)) {}

std::uint64_t RingPoller::monotonic_ns(Clock::time_point t) {
  // libstdc++'s steady_clock is CLOCK_MONOTONIC, the clock the shims read.
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

void RingPoller::promise(Member& member, Source& source, Clock::time_point at) {
  member.promised = at;
  source.promise_ring_read_by(monotonic_ns(at));
}

void RingPoller::keep_reading(const std::shared_ptr<Source>& source) {
  const auto hold_until = Clock::now() + window_;
  auto it = std::find_if(members_.begin(), members_.end(),
                         [&](const Member& m) { return m.source.lock() == source; });
  if (it == members_.end()) {
    members_.push_back(Member{source, hold_until, {}});
    it = members_.end() - 1;
  } else {
    it->hold_until = std::max(it->hold_until, hold_until);
  }
  if (!next_tick_) arm(hold_until);
  // The bare next tick: a word already further out was read at this
  // tick or will be (the ring stays until an empty read past its word).
  promise(*it, *source, *next_tick_);
}

void RingPoller::arm(Clock::time_point at) {
  next_tick_ = at;
  timer_.expires_at(at);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();  // not after ec: the poller may be gone (the timer cancelled in its destructor)
  });
}

void RingPoller::tick() {
  next_tick_.reset();
  const auto now = Clock::now();
  // Reading dispatches records, which may close connections: work on what
  // the members were, holding each source while it is read and committed.
  struct Read {
    std::shared_ptr<Source> source;
    bool stays;
    bool had_records;
    Clock::time_point hold_until;
  };
  std::vector<Read> reads;
  reads.reserve(members_.size());
  bool any_records = false;
  for (const auto& member : std::exchange(members_, {})) {
    auto source = member.source.lock();
    if (!source) continue;
    const auto records = source->read_ring();
    if (!records) continue;  // its ring is gone (closed, or detached as corrupt)
    any_records |= *records > 0;
    // An empty read only ends the polling a window after the last wake-up,
    // and once no promise is pending (the word is past).
    const bool stays = *records > 0 || now < member.hold_until || now < member.promised;
    reads.push_back(Read{std::move(source), stays, *records > 0, member.hold_until});
  }
  // One journal write for every ring's records, then their read positions.
  if (any_records && end_of_batch_) end_of_batch_();
  for (const auto& read : reads) read.source->commit_ring();
  const bool any_stays = std::any_of(reads.begin(), reads.end(), [](const Read& r) { return r.stays; });
  if (members_.empty() && !any_stays) return;
  if (!next_tick_) arm(Clock::now() + window_);
  // Promised after the read: a record the read missed was published after
  // the previous promise had passed, so its shim woke lpd or is told to wait.
  // Reading may have woken a ring (keep_reading while dispatching): it is a
  // member already.
  for (const auto& read : reads) {
    if (!read.stays) continue;
    auto it = std::find_if(members_.begin(), members_.end(),
                           [&](const Member& m) { return m.source.lock() == read.source; });
    if (it == members_.end()) it = members_.insert(members_.end(), Member{read.source, read.hold_until, {}});
    promise(*it, *read.source, read.had_records ? *next_tick_ + grace() : *next_tick_);
  }
}

}  // namespace lpd::daemon
