#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "daemon/core/event_bus.h"
#include "daemon/core/unique_fd.h"
#include "daemon/history/event_line.h"

namespace lpd::daemon {

/// EventLog is lpd's global events journal: every event, in seq order, in
/// segment files events/<first seq, 20 digits>.jsonl of about kSegmentBytes
/// (see event_line.h for a line). It is what events.list and a subscription
/// with `since` read once the in-memory history no longer holds an event,
/// and where a restarted lpd finds the last seq. Writes are buffered by the
/// caller's schedule (append, then flush): one write() per batch, not per
/// event. Each lpd starts a new segment, so a line torn by kill -9 stays
/// at the end of an old one, where readers skip it.
class EventLog {
 public:
  static constexpr std::size_t kSegmentBytes = 8 * 1024 * 1024;
  /// A sparse index entry every this many bytes of a segment.
  static constexpr std::size_t kIndexStride = 64 * 1024;

  /// `dir`: absolute path of the journal directory (created by open()).
  explicit EventLog(std::string dir) : dir_(std::move(dir)) {}
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  /// Lists the segments and reads the tail of the last non-empty one.
  /// Returns the last seq the journal holds (0 when empty). Throws
  /// std::system_error when the directory cannot be made or read.
  std::uint64_t open();
  /// The last seq appended, or found by open() (0 for none).
  std::uint64_t last_seq() const { return last_seq_; }
  /// The time of the event with the last seq open() found (seconds since
  /// the epoch; 0 when the journal is empty or that line is not readable).
  double last_time() const { return last_time_; }

  /// Buffers `e`; nothing is written before flush().
  void append(const Event& e);
  /// append() with `e`'s line parts already formatted (RunJournal's).
  void append(const Event& e, const EventLineParts& parts);
  std::size_t pending_bytes() const { return pending_.size(); }
  /// Writes what append() buffered, in one write(). Returns false when the
  /// write failed (a full disk, EIO): then any part of the batch that made
  /// it is cut off again (no torn line stays) and the batch is kept for the
  /// next flush (the first failure and the recovery are logged), up to
  /// kMaxPendingBytes, past which the oldest batch is dropped, logged.
  bool flush();
  /// Unwritten events kept across failed flushes, at most (64 MiB).
  static constexpr std::size_t kMaxPendingBytes = 64u << 20;

  /// One page read from the journal.
  struct Page {
    std::vector<Event> events;
    std::uint64_t last_scanned = 0;  // the cursor for the next page (`after`)
    bool exhausted = false;          // the journal holds nothing past last_scanned
    std::size_t bytes = 0;           // journal bytes read
  };
  /// The events with seq > `after` that `keep` accepts, oldest first: at most
  /// `max_events`, stopping once `max_scan_bytes` of journal were read.
  /// Flushes first, so it sees every event appended. `wanted` (optional)
  /// rejects a line by its type and run id before it is parsed (a narrow
  /// filter over a long journal: most lines are only looked at).
  /// `dead_segment` (optional) skips, unread, a sealed segment whose summary
  /// is known and holds nothing `keep` could accept (every run in it
  /// removed): after a prune, `lpctl events` read through hundreds of MB of
  /// removed runs' events, 4 MiB per empty page, until compaction (the
  /// attack: 3.8 s to the first line).
  struct Summary;
  Page read(std::uint64_t after, std::size_t max_events, std::size_t max_scan_bytes,
            const std::function<bool(const Event&)>& keep,
            const std::function<bool(const LineHead&)>& wanted = {},
            const std::function<bool(const Summary&)>& dead_segment = {});

  /// The smallest seq the journal may hold (0 when empty).
  std::uint64_t first_seq() const { return segments_.empty() ? 0 : segments_.front().first_seq; }

  /// What a segment holds, as far as retention asks: the runs it has events
  /// of, and the time of its oldest event of no run.
  struct Summary {
    std::set<std::string> run_ids;
    double oldest_runless = std::numeric_limits<double>::infinity();
  };
  /// Compacts one sealed segment (never the one being written), the
  /// `cursor`-th: a segment whose every event `dead(run_id, time)` says is
  /// dead is removed, one with some dead events rewritten without them
  /// (write `.new`, then rename over it). Each line is judged by its run id
  /// and time read off its head (head_of_event_line), parsed only when the
  /// head cannot tell (an escape in it): retention at its limit compacts
  /// after every run's end, and a JSON tree per line of an 8 MiB segment
  /// held the event loop for 0.4 s. A line that is not a complete record is
  /// dropped. A segment already read once is skipped without reading when
  /// `may_hold_dead(its summary)` says false. Returns false when there is
  /// no such segment (the pass is over). Advances `cursor`.
  using DeadEvent = std::function<bool(std::string_view run_id, double time)>;
  bool compact_one(std::size_t& cursor, const DeadEvent& dead,
                   const std::function<bool(const Summary&)>& may_hold_dead);

  const std::string& dir() const { return dir_; }

 private:
  struct Segment {
    std::uint64_t first_seq = 0;  // from the name: no event in it is smaller
    std::uint64_t size = 0;       // bytes written so far
    std::vector<std::pair<std::uint64_t, std::uint64_t>> index;  // (seq, offset of its line)
    bool indexed = false;         // index covers the whole segment
    std::optional<Summary> summary;  // known once read, or when written by this lpd from its start
  };

  std::string path_of(const Segment& s) const;
  void start_segment(std::uint64_t first_seq);
  void build_index(Segment& s);
  /// Calls `line(text, offset)` for every complete line of `s` from `offset`
  /// (a torn last line is not one) until it returns false. Returns the bytes
  /// consumed.
  std::uint64_t scan(const Segment& s, std::uint64_t offset,
                     const std::function<bool(std::string_view, std::uint64_t)>& line) const;

  std::string dir_;
  std::vector<Segment> segments_;  // by first_seq; the last one is written
  UniqueFd current_;               // O_APPEND fd of segments_.back(), once written to
  std::string pending_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> pending_index_;  // (seq, offset in pending_)
  Summary pending_summary_;
  const std::string* last_run_id_ = nullptr;  // in pending_summary_.run_ids: the last one append() saw
  std::uint64_t last_seq_ = 0;
  double last_time_ = 0;  // of the last event open() found
  std::uint64_t next_index_at_ = 0;  // segment offset of the next index entry
  bool failing_ = false;  // flushes fail (since the last one that wrote): logged once
};

}  // namespace lpd::daemon
