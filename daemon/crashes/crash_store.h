#pragma once

#include <chrono>

#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "daemon/crashes/crash.h"
#include "daemon/core/state_store.h"

namespace lpd::daemon {

/// CrashStore owns crashes.jsonl: every crash record lpd made, one JSON line
/// each, oldest first (pytest-abort's crash-log layout, plus `crash_id`).
/// The whole journal is read once, at start (load()); from then on the
/// records live in memory, indexed by crash_id and by run, so crash.list and
/// a run's report never read the file again. Each record is about its line's
/// size in memory (tracebacks are at most 64 KiB); retention (forget_runs)
/// is what bounds it.
///
/// Writes: append() adds one line (one write(), fsync) and never twice for
/// the same crash; mark_flaky() appends the record's id to a side file
/// (crashes.flaky.jsonl, read back at load), since any user whose crashed
/// test passes on a rerun causes one and a rewrite of a large journal
/// blocks lpd for everyone; a compaction (forget_runs(), retention, once
/// crash_compaction_due()) rewrites the journal by write-new-and-rename from memory, folding the flaky marks into the
/// records and emptying the side file. lpd is single-threaded, so no append
/// can slip in between the snapshot and the rename; the cost of a rewrite
/// is one pass over the records kept (about 40 MB for 10,000 crashes with
/// 4 KB tracebacks). A write that fails (ENOSPC, EIO) leaves the record in
/// memory, served as usual, and queued: it is written, in order and once,
/// by the next write that succeeds (flush(): at the next crash, or when
/// CrashRetry tries again). The log says once that records wait (how
/// many, why) and once that they were written.
class CrashStore {
 public:
  /// The longest line read back or written: a record larger than this on
  /// disk is skipped at load; a new one is cut to fit (traceback first,
  /// marking the cut). Small enough that one record always fits a reply.
  static constexpr std::size_t kMaxRecordBytes = 256 * 1024;
  /// What one user's crash records may hold in all (memory and disk) before
  /// the tracebacks of their next ones are cut to kBudgetTracebackBytes:
  /// a thousand self-killing workers a run with 60 KB tracebacks made
  /// 464 MB of records, 720 MB of lpd's memory and a 15 s restart for
  /// everyone. Another user's records are never cut for it.
  static constexpr std::size_t kMaxBytesPerOwner = 64u << 20;
  /// A traceback past the owner's budget keeps its last this many bytes
  /// (faulthandler writes the crashing thread last).
  static constexpr std::size_t kBudgetTracebackBytes = 4096;
  /// ...and a reason its first this many (only a hostile controller makes
  /// one longer: it repeats the nodeid, up to 16 KiB).
  static constexpr std::size_t kBudgetReasonBytes = 1024;
  /// Past this, lpd keeps no new record of the owner's: cut records are
  /// still up to about 22 KB (a 16 KiB nodeid), and 3,000 `worker.crashed`
  /// of made-up pids from one controller took lpd from 11 to 222 MB. A run
  /// whose crash is not kept gets one record saying so instead (nodeid
  /// empty, pid 0: crash_not_kept_marker), so its report is never green
  /// for it: the crash shows as an error outside tests.
  static constexpr std::size_t kRefuseBytesPerOwner = kMaxBytesPerOwner + (32u << 20);
  /// A crash.list page stops before its records' encoded size passes this
  /// (it always holds at least one record), far below the protocol's 1 MiB.
  static constexpr std::size_t kPageBytes = 512 * 1024;
  static constexpr std::size_t kDefaultPageLimit = 100;
  static constexpr std::size_t kMaxPageLimit = 1000;
  static constexpr std::string_view kJournal = "crashes.jsonl";
  /// mark_flaky()'s side file: {"crash_id":N} per line, until a rewrite
  /// folds them into the journal.
  static constexpr std::string_view kFlakyMarks = "crashes.flaky.jsonl";
  /// Marks kept in the side file before mark_flaky() compacts instead (and
  /// the most load() reads back: about 2 MiB of them).
  static constexpr std::size_t kMaxFlakyMarks = 65536;

  /// Told after every flush that had something to write: true when all of
  /// it is on disk now, false when some still waits (CrashRetry).
  class FlushWatcher {
   public:
    virtual ~FlushWatcher() = default;
    virtual void flushed(bool written) = 0;
    /// Runs `sync` (an fsync of what was appended) soon, once for every
    /// append meanwhile; true when it will. False (the default, and in
    /// tests): the store fsyncs at once. A burst of crashes (thousands of
    /// processes of one run dying together) was an fsync each, on the
    /// event loop: 40 s for 10,000.
    virtual bool sync_later(std::function<void()> sync) {
      (void)sync;
      return false;
    }
  };

  /// `flushes`: told of each flush (null: nobody, in tests); only its
  /// address is kept here, so it may be built after the store.
  explicit CrashStore(const StateStore& store, FlushWatcher* flushes = nullptr);

  /// What load() found, for the log.
  struct LoadReport {
    std::size_t records = 0;
    std::size_t unreadable_lines = 0;  // not JSON, not an object, or fields of the wrong type
    std::size_t oversized_lines = 0;   // over kMaxRecordBytes
    std::size_t renumbered = 0;        // records without a (valid, increasing) crash_id
    bool torn_tail = false;            // the last line had no newline (lpd died mid-write)
  };
  /// Reads crashes.jsonl in one pass (bounded lines, no links or FIFOs
  /// followed). Records written before crash_id existed are numbered in
  /// file order, the same way at every start. A missing file is an empty
  /// store. Throws nothing for bad content; call once, before append().
  LoadReport load();

  /// Stores a new crash: gives it the next crash_id and writes it durably;
  /// its traceback is cut (to its end, the cut said in the text) and its
  /// reason to its start when its owner's records are past
  /// kMaxBytesPerOwner. Past kRefuseBytesPerOwner the crash is not kept:
  /// its run's "not kept" record is stored instead, once per attempt, and
  /// returned (size() tells whether anything was added).
  /// Idempotent on (run_id, attempt, pid, nodeid): a crash already stored
  /// is returned as it is and nothing is written (a restarted lpd hearing
  /// about the same death again). The reference stays valid until the
  /// record is forgotten.
  const Crash& append(Crash crash);
  /// The stored crash with the same key as `crash`, or nullptr.
  const Crash* find_same(const Crash& crash) const;
  const Crash* find(std::uint64_t crash_id) const;
  /// A run's crashes, oldest first.
  std::vector<const Crash*> of_run(std::string_view run_id) const;
  /// Sets `flaky` on a record and persists it (a line in kFlakyMarks, or
  /// a rewrite past kMaxFlakyMarks). False when no such record.
  bool mark_flaky(std::uint64_t crash_id);
  /// Drops every record of these runs from memory (no listing shows them
  /// from then on). Their lines leave crashes.jsonl at the next compaction
  /// (a rewrite), done now only when crash_compaction_due() says so: at
  /// the retention limit every run end removes a run, and rewriting tens of
  /// MB each time held lpd's loop 200-500 ms per run end (the attack). A
  /// restarted lpd forgets the records of runs it no longer keeps again
  /// (Daemon::restore_state), so a line left behind never comes back.
  void forget_runs(const std::set<std::string>& run_ids);
  /// The runs that have crash records, in order.
  std::vector<std::string> run_ids() const;
  /// Bytes of forgotten records still in crashes.jsonl (0 after a compaction).
  std::size_t dead_bytes() const { return dead_bytes_; }

  /// One page of crash.list, oldest first: records with crash_id > `after`
  /// (of `run_id` when not empty), at most `limit` of them and, past the
  /// first, at most `max_bytes` of encoded records. `next` is the cursor
  /// for the following page (the last crash_id given), nullopt at the end.
  struct Page {
    std::vector<const Crash*> crashes;
    std::optional<std::uint64_t> next;
  };
  Page page(std::uint64_t after, std::size_t limit, std::string_view run_id = {},
            std::size_t max_bytes = kPageBytes) const;

  std::size_t size() const { return records_.size(); }
  /// Records kept in memory that are not in the journal yet (a write failed).
  std::size_t unwritten() const {
    return unwritten_.size() + unwritten_marks_.size() + (rewrite_needed_ ? 1 : 0);
  }
  /// Writes what is pending (queued appends, a rewrite); true when nothing
  /// is left pending. Called by every write; callers may retry it. Records
  /// are written in crash_id order, each once: a write that failed midway
  /// is cut back before the next try.
  bool flush();
  /// The fsync append_lines left to FlushWatcher::sync_later, if one is
  /// still owed, done now (its posted run, or lpd stopping): both files
  /// appended to (the journal, the flaky marks). Logged when it fails: the
  /// lines were written, only their durability is in doubt.
  void sync_now();
  /// Whether some write failed and has not been made good yet.
  bool waiting() const { return waiting_; }
  /// The last write failure ("cannot write D/crashes.jsonl: No space left
  /// on device"), empty when none is waiting.
  const std::string& cause() const { return cause_; }
  /// Records kept in memory only, oldest first (for the log when lpd stops
  /// with some still unwritten).
  std::vector<const Crash*> unwritten_records() const;

  /// The two per-owner budgets append() applies: cut from `cut_from`
  /// bytes, nothing kept past `refuse_from`. lpd keeps the defaults; tests
  /// set small ones to reach them in a few records.
  struct OwnerBudget {
    std::size_t cut_from = kMaxBytesPerOwner;
    std::size_t refuse_from = kRefuseBytesPerOwner;
  };
  OwnerBudget owner_budget;

  /// Test seam: called with every block of bytes about to be written to
  /// the journal; returning an errno makes that write fail as if the file
  /// system had (ENOSPC). Unset in lpd.
  std::function<int(std::string_view bytes)> fail_write_for_test;

 private:
  using Key = std::tuple<std::string, int, pid_t, std::string>;  // run_id, attempt, pid, nodeid
  static Key key_of(const Crash& crash) { return {crash.run_id, crash.attempt, crash.pid, crash.nodeid}; }
  struct Entry {
    Crash crash;
    std::size_t bytes = 0;  // its line's length, newline included: the page budget's measure
  };

  void index(Crash crash, std::size_t bytes);
  /// owner_bytes_[owner]: a record of `was` bytes is now `now` bytes (0: new, or gone).
  void recount(uid_t owner, std::size_t was, std::size_t now);
  /// Appends `lines` to `file` (created 0600), fsynced; on failure cuts
  /// back what was written and sets cause_. `torn`: set when a cut back
  /// failed (the file's last line may lack its newline).
  bool append_lines(const std::string& file, const std::string& lines, bool& torn);
  /// Reads kFlakyMarks back (after the journal): flags the records named.
  void load_flaky_marks();
  bool rewrite();
  /// Logs the start and the end of a wait (once each), tells the FlushWatcher.
  void note_flush(bool written, std::size_t records, bool rewrite, std::size_t marks = 0);
  std::string path() const;

  const StateStore& store_;
  FlushWatcher* flushes_;
  std::map<std::uint64_t, Entry> records_;  // by crash_id, oldest first
  std::unordered_map<uid_t, std::size_t> owner_bytes_;  // Entry::bytes summed per crash owner
  std::map<std::string, std::vector<std::uint64_t>, std::less<>> by_run_;
  std::map<Key, std::uint64_t> by_key_;
  std::uint64_t last_id_ = 0;
  std::vector<std::uint64_t> unwritten_;  // appended in memory, not yet on disk, in order
  std::vector<std::uint64_t> unwritten_marks_;  // flaky marks not yet in kFlakyMarks
  std::size_t marks_ = 0;                 // lines in kFlakyMarks since the last rewrite
  bool marks_torn_ = false;               // kFlakyMarks' last line lacks its newline
  bool rewrite_needed_ = false;           // a forget_runs rewrite (or one past kMaxFlakyMarks) not yet done
  std::size_t dead_bytes_ = 0;            // forgotten records' bytes still in the journal
  std::chrono::steady_clock::time_point compacted_at_ = std::chrono::steady_clock::now();
  bool sync_owed_ = false;                // appended lines wait for sync_now()
  bool torn_tail_ = false;                // the journal's last line lacks its newline
  bool waiting_ = false;                  // a failed write not yet made good (logged once)
  std::string cause_;                     // why the last write failed
};

/// Whether crashes.jsonl should be rewritten now to drop forgotten records:
/// `dead_bytes` of them among `live_bytes` of kept ones, `since_last` after
/// the last compaction. Yes once they are a third of the file (the rewrite's
/// cost then amortised over as many removals as it has records), whenever
/// the file is small (1 MiB: cheap), and at most an hour after the last one,
/// so a removed run's records do not stay on disk for long. Plain rule.
bool crash_compaction_due(std::size_t dead_bytes, std::size_t live_bytes, std::chrono::seconds since_last);

/// The line a crash is stored as (its JSON, newline included), made to fit
/// `max_bytes`: the traceback is cut first, then the reason, then the
/// nodeid, each cut said in the text. Plain rule, no I/O.
std::string crash_line(Crash& crash, std::size_t max_bytes);

}  // namespace lpd::daemon
