#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace lpd::protocol {

/// The event ring is a second lane for a shim's one-way messages: shared
/// memory the shim writes and lpd reads. A message sent on the socket wakes
/// lpd, and on a virtual machine that wake-up costs the sender about ten
/// microseconds: more than the rest of a trivial test's bookkeeping. Written
/// into the ring it costs a memory copy, lpd reads it within the coalescing
/// window, and a crash loses nothing because the memory outlives the process.
///
/// Layout (all integers little-endian; see protocol/README.md):
///   0  u32 magic "LPDR"     4  u32 version (1)
///   8  u64 write position (bytes ever written; only the shim moves it)
///   16 u64 read position (bytes ever consumed; only lpd moves it)
///   24 u64 phase mark (only the shim writes it; see PhaseMark)
///   32 u64 read-by (only lpd writes it; see EventRingReader::promise_read_by)
///   40 u64 ring id (only lpd writes it, at the first ring.attach; 0 before:
///      see EventRingReader::ring_id)
///   64 data, `capacity` bytes, a power of two; position p is data[p % capacity]
/// Each record is a u32 length, then that many bytes of one JSON message
/// (no newline), wrapping byte-wise at the end of the data.
namespace event_ring {
inline constexpr std::uint32_t kMagic = 0x5244504C;  // "LPDR" in memory order
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::size_t kHeaderBytes = 64;
inline constexpr std::size_t kMagicOffset = 0;
inline constexpr std::size_t kVersionOffset = 4;
inline constexpr std::size_t kWriteOffset = 8;
inline constexpr std::size_t kReadOffset = 16;
inline constexpr std::size_t kPhaseMarkOffset = 24;
inline constexpr std::size_t kReadByOffset = 32;
inline constexpr std::size_t kRingIdOffset = 40;
inline constexpr std::size_t kMinCapacity = 4 * 1024;
inline constexpr std::size_t kMaxCapacity = 16 * 1024 * 1024;
/// A bigger message goes over the socket.
inline constexpr std::uint32_t kMaxRecordBytes = 64 * 1024;
}  // namespace event_ring

/// The phase mark says which phase the running test is in without a
/// record: pytest enters call and teardown once per test, and two records
/// per test (a test.phase each) were half of what lpd read from the ring.
/// The word is (P << 8) | code: P the ring position where the test's
/// test.start record begins, code 1 setup, 2 call, 3 teardown. A shim sets
/// it only when lpd said so in ring.attach's reply ("phase_mark": true) and
/// only for a test whose test.start went into the ring; it is a hint over
/// memory the shim controls, so lpd uses it only when P is the position of
/// the test.start it read last from that ring.
struct PhaseMark {
  std::uint64_t start_position = 0;
  std::string_view phase;  // "setup", "call" or "teardown"
};

/// The mark in `word`, or nullopt for a code that is none of the three
/// (0: no mark yet).
std::optional<PhaseMark> decode_phase_mark(std::uint64_t word);

/// EventRingReader is the consumer side over memory it does not trust: the
/// producer may scribble anything at any time, so every position and length
/// is checked and every record copied out before it is looked at.
class EventRingReader {
 public:
  /// Why a region of `total_bytes` cannot be a ring, or nothing when it can.
  static std::optional<std::string> check_size(std::size_t total_bytes);

  /// `memory` is the whole mapping, header included; its size must pass
  /// check_size(). The header must carry the magic and version, or this
  /// throws protocol::Error (bad_request). Starts at the published read
  /// position, so a ring handed to a restarted lpd resumes where the last
  /// reader stopped.
  explicit EventRingReader(std::span<std::byte> memory);

  struct Drained {
    std::size_t records = 0;  // handed to on_record
    std::size_t skipped = 0;  // passed over (see skip_to)
    std::optional<std::string> error;  // set once the ring is corrupt: stop using it
  };
  /// Hands every complete record to `on_record`, in order, then calls
  /// `before_commit` (when records were read) and only then publishes the
  /// new read position so the producer can reuse the space. A reader killed
  /// before the commit reads the records again after a restart: whatever
  /// `before_commit` makes durable (lpd's journals) is never lost with them.
  Drained drain(const std::function<void(std::string_view)>& on_record,
                const std::function<void()>& before_commit = {});
  /// drain() in two steps, for a reader that reads several rings and makes
  /// their records durable once: read() hands every complete record to
  /// `on_record` and moves the read position in memory only; commit()
  /// publishes it. Until commit() the producer cannot reuse the space.
  Drained read(const std::function<void(std::string_view)>& on_record);
  void commit();

  /// Promises the producer that lpd starts another read of the ring at or
  /// after `monotonic_ns` (CLOCK_MONOTONIC, nanoseconds; 0: no promise), so
  /// that a record published before then needs no wake-up. A shim that
  /// checked lpd's clock is its own (ring.attach's `monotonic_ns`) skips the
  /// wake-up while its clock, plus the uncertainty of that check, is before
  /// it. lpd only moves it forward while it keeps the promise, and sets 0
  /// when it stops reading (a closed connection, a ring handed over).
  void promise_read_by(std::uint64_t monotonic_ns) { store_position(event_ring::kReadByOffset, monotonic_ns); }

  /// lpd's name for this ring (0: none yet), which its journals write
  /// beside how far they hold the ring's records, so that a restarted lpd
  /// handed the same ring does not record them twice (lpd killed between
  /// its journal write and commit()). The shim never writes it; a shim that
  /// does can only make lpd skip records of its own ring.
  std::uint64_t ring_id() const { return load_position(event_ring::kRingIdOffset); }
  void set_ring_id(std::uint64_t id) { store_position(event_ring::kRingIdOffset, id); }
  /// Passes over, without handing them to on_record, the records that begin
  /// before `position`: the ones a previous reader's journal already holds.
  /// False (nothing skipped) unless `position` is after the read position
  /// and at most the write position: a mark that cannot be this ring's.
  bool skip_to(std::uint64_t position);

  std::size_t capacity() const { return capacity_; }
  std::uint64_t read_position() const { return read_; }
  /// While drain() hands a record to `on_record`: the ring position where
  /// that record begins (its length word); nullopt at any other time.
  std::optional<std::uint64_t> record_position() const { return record_position_; }
  /// The phase mark as the shim last set it (see PhaseMark).
  std::optional<PhaseMark> phase_mark() const { return decode_phase_mark(load_position(event_ring::kPhaseMarkOffset)); }

 private:
  std::uint64_t load_position(std::size_t offset) const;
  void store_position(std::size_t offset, std::uint64_t value);
  void copy_out(std::uint64_t position, std::byte* out, std::size_t n) const;

  std::span<std::byte> memory_;
  std::size_t capacity_;
  std::uint64_t read_;
  std::uint64_t skip_to_ = 0;  // records beginning before it are passed over
  std::optional<std::uint64_t> record_position_;
};

}  // namespace lpd::protocol
