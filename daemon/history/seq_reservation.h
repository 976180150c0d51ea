#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

namespace lpd::daemon {

/// SeqReservation keeps event seqs increasing across restarts without a
/// write per event. Before the bus uses a seq past the reserved limit, lpd
/// records "the next lpd starts at X" (events/seq.json) for a whole block
/// of seqs; a restarted lpd, even after kill -9, starts at X or past the
/// last seq its journal holds, whichever is larger. Seqs therefore never
/// repeat or go backwards; a restart may skip up to kBlock of them.
class SeqReservation {
 public:
  /// 65,536: one write per 65,536 events (a 10,000-test run publishes
  /// 20,000); seqs are 64-bit, so skipping that many per restart is free.
  static constexpr std::uint64_t kBlock = 65536;

  /// The first seq a starting lpd may use: past what seq.json recorded
  /// (`recorded`, 0 when absent) and past the journal's last seq
  /// (`last_logged`, 0 when empty).
  static std::uint64_t first_seq(std::uint64_t recorded, std::uint64_t last_logged) {
    return std::max<std::uint64_t>({recorded, last_logged + 1, 1});
  }

  /// Nothing is reserved yet: the first seq used needs a record.
  explicit SeqReservation(std::uint64_t first) : limit_(first) {}

  /// The value to record before `seq` may be used (the start of the block
  /// after it), or nullopt when `seq` is already covered by a record.
  std::optional<std::uint64_t> needs_record(std::uint64_t seq) const {
    if (seq < limit_) return std::nullopt;
    return seq + kBlock;
  }
  /// `limit` was recorded: every seq below it may be used.
  void recorded(std::uint64_t limit) { limit_ = std::max(limit_, limit); }
  std::uint64_t limit() const { return limit_; }

 private:
  std::uint64_t limit_;
};

}  // namespace lpd::daemon
