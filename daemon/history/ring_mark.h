#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace lpd::daemon {

/// A ring mark is the line a run's journal (runs/<run_id>/events.jsonl)
/// gets after the events lpd recorded from one read of a shim's event ring:
/// how far that ring's records are now in the journal. lpd publishes a
/// ring's read position (the shim may then reuse the space) only after the
/// journal write; killed between the two, the next lpd is handed the same
/// ring at the old position and would record its last records twice (a
/// test.finish twice in the run's report). It reads the marks back and
/// skips those records instead (protocol::EventRingReader::skip_to).
///
/// Line: {"event":"lpd.ring_read","ring":"<16 hex digits>","to":N,"batch":B}:
/// shaped as an event, so readers that go by each line's "event" (tools
/// written for pytest-live-pause's layout) pass over it, but it is lpd's
/// own bookkeeping, with no seq, never published nor in the events journal.
/// A run's journal gets none after its run.ended.
struct RingMark {
  std::uint64_t ring_id = 0;  // protocol::EventRingReader::ring_id()
  std::uint64_t read_to = 0;  // the ring position after the last record journaled
  std::uint64_t batch = 0;    // which journal write of that lpd (RunJournal counts them)
};

/// `mark` as its journal line, newline included, appended to `out`.
void append_ring_mark_line(std::string& out, const RingMark& mark);

/// The mark of a journal line (without its newline); nullopt for any other
/// line, a torn one or one with a field out of shape.
std::optional<RingMark> parse_ring_mark(std::string_view line);

/// LastBatchMarks reads a run journal's lines from the last one backwards
/// and keeps the marks of the last journal write that had any: only that
/// write can be ahead of the read positions lpd published (it publishes
/// them right after each write), so earlier marks cannot matter and the
/// scan stops at the first one of another batch.
class LastBatchMarks {
 public:
  /// Takes the line before the previous one; false once earlier lines
  /// cannot change marks() (stop reading).
  bool feed(std::string_view line);
  /// Ring id -> how far its records are journaled (the furthest, should a
  /// batch name a ring twice).
  const std::map<std::uint64_t, std::uint64_t>& marks() const { return marks_; }

 private:
  std::optional<std::uint64_t> batch_;
  std::map<std::uint64_t, std::uint64_t> marks_;
};

}  // namespace lpd::daemon
