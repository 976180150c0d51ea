#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/core/event_bus.h"
#include "daemon/history/event_log.h"
#include "daemon/history/journal_quota.h"
#include "daemon/core/state_store.h"
#include "daemon/core/unique_fd.h"

namespace lpd::daemon {

/// RunJournal mirrors every event that belongs to a run into
/// runs/<run_id>/events.jsonl, one line per event, for tools that read
/// pytest-live-pause's layout and so a restarted lpd can rebuild a run's
/// report; and every event into the global EventLog. It only listens; the
/// socket stays the control channel.
///
/// Writes are batched: a suite of many small tests publishes two events per
/// test, and a write() each cost more than the test. Lines wait in a buffer
/// per journal until a short coalescing deadline (kCoalesce) passes or
/// kFlushBytes pile up, and are always written before a run's end is
/// published onwards (run.ended) and when lpd stops. A journal stays open
/// while its run is active.
class RunJournal {
 public:
  /// What the journal asks of the run registry about a run: its owner and
  /// whether it is active (nullopt: no such run).
  struct RunOwner {
    uid_t owner = 0;
    bool active = false;
  };
  /// `forgotten(run_id)`: true for a run retention removed, whose late
  /// events must not recreate its directory. `limits`: how many bytes of
  /// journal a run and an owner may have (JournalQuota); `owner_of` tells a
  /// run's owner; `over_owner()` is called (at most once a second) while an
  /// owner's runs' journals are past limits.per_owner, so that retention
  /// removes that owner's oldest ended runs.
  RunJournal(boost::asio::io_context& io, EventBus& events, const StateStore& store, EventLog& log,
             std::function<bool(std::string_view run_id)> forgotten, JournalLimits limits = {},
             std::function<std::optional<RunOwner>(const std::string& run_id)> owner_of = {},
             std::function<void()> over_owner = {});
  /// Writes what is still buffered.
  ~RunJournal();
  RunJournal(const RunJournal&) = delete;
  RunJournal& operator=(const RunJournal&) = delete;

  /// Open journals are capped; past this the oldest is closed (reopened on need).
  static constexpr std::size_t kMaxOpen = 64;
  /// How long an event may wait in memory before it is written.
  static constexpr std::chrono::milliseconds kCoalesce{20};
  /// Buffered bytes (all journals) that trigger a write at once.
  static constexpr std::size_t kFlushBytes = 256 * 1024;

  /// Writes every buffered line now (run journals and the global log).
  /// What a full disk (or EIO) refuses stays buffered, up to
  /// kMaxUnwrittenBytes a journal, and is tried again every kRetry until
  /// written; a run's journal is closed only once its lines are written.
  void flush();
  /// Bytes still unwritten after the last flush(): each run journal's
  /// (by run id, only those with some) and the global events journal's.
  struct Unwritten {
    std::map<std::string, std::size_t> runs;
    std::size_t events = 0;
  };
  Unwritten unwritten() const;
  /// How often writes are tried again while they fail.
  static constexpr std::chrono::milliseconds kRetry{1000};
  /// Unwritten lines kept per run journal while writes fail (64 MiB).
  static constexpr std::size_t kMaxUnwrittenBytes = 64u << 20;
  /// Drops the buffer and closes the journal of runs that were removed.
  void forget(std::string_view run_id);
  /// The run was removed: its journal no longer counts (forget() too).
  void removed(std::string_view run_id);

  /// The bytes each run's journal holds, and the limits (JournalQuota).
  /// Runs are measured when their journal opens; History measures the
  /// others at start (measure_ended).
  const JournalQuota& quota() const { return quota_; }
  /// At start: run `run_id`'s journal (not open) holds `bytes`.
  void measured(const std::string& run_id, uid_t owner, std::uint64_t bytes, bool active) {
    quota_.measured(run_id, owner, bytes, active);
  }
  /// The note a run's journal gets, once, when its lines are first
  /// refused: {"limit": bytes, "reason": "run" or "owner", "event": this,
  /// "time", "run_id"}, written whatever the limits in the batch of the
  /// refused line (no seq: it is no published event), so an lpd killed
  /// any time after finds it. A restarted lpd that finds it knows the
  /// results that came after are not there. The event of this type
  /// published then (with its seq) goes to lpd's events journal only.
  static constexpr std::string_view kEventsNotKept = "run.events_not_kept";

  /// Ring marks (see RingMark): the events recorded from one read of a
  /// shim's event ring follow, until ring_read_ended(). Reads may nest (a
  /// record that ends a run drains its workers' rings).
  void ring_read_begins();
  /// Appends the mark "ring `ring_id` journaled up to `read_to`" to the
  /// journal of every run that got an event since the matching
  /// ring_read_begins(), after those events.
  void ring_read_ended(std::uint64_t ring_id, std::uint64_t read_to);
  /// The end of a batch, before its rings' read positions are published:
  /// flush(), and the marks that follow belong to the next batch.
  void end_batch();
  /// At start-up, once the events journal is open and before anything is
  /// published: flush() writes the runs' journals before lpd's events
  /// journal, so a previous lpd killed between the two left its last batch
  /// in the runs' journals only (and their ring marks say it is recorded,
  /// so it is not read from the rings again). Those events, the ones with
  /// a seq past the events journal's last, are appended to it now with
  /// their own seqs, in seq order, and written. `runs` (run id and owner):
  /// every run that may have had an event in that batch (the active ones,
  /// and those ended since the events journal's last event); each journal
  /// is read from its end, at most kMaxRingMarkScanBytes, down to its first
  /// event the events journal has. The owner given to an event is its
  /// run's (a run's journal does not record who an event was for). Returns
  /// how many events were appended; logs what it cannot read.
  std::size_t restore_lost_batch(const std::vector<std::pair<std::string, uid_t>>& runs);
  /// At start-up, before any ring is attached: reads back, from the end of
  /// the journal of each run in `runs` (run id and owner: the active ones,
  /// only their shims hand a ring back), the marks of its last batch
  /// (LastBatchMarks), at most kMaxRingMarkScanBytes a journal. Logs what it
  /// cannot read.
  void recall_ring_marks(const std::vector<std::pair<std::string, uid_t>>& runs);
  static constexpr std::size_t kMaxRingMarkScanBytes = 64u << 20;
  /// How far a previous lpd journaled ring `ring_id`'s records, when its
  /// last marks say so and they are in a run of `uid` (a ring id is the
  /// shim's to repeat: another user's, were it guessed, changes nothing);
  /// asked once per ring handed over (forgotten then).
  std::optional<std::uint64_t> take_journaled_to(std::uint64_t ring_id, uid_t uid);

 private:
  struct Journal {
    UniqueFd fd;
    std::string buffer;
    std::optional<uid_t> owner;  // the run's, as the registry said when it opened
  };
  void append(const Event& e);
  /// Whether `e`'s line of `bytes` may go to its run's journal (and the
  /// events journal): counts it, or refuses it and tells once.
  bool admitted(const Event& e, const Journal& journal, std::size_t bytes);
  /// Whether `e`, an event without a run journal (of no run, or of a run
  /// lpd no longer keeps), may go to the events journal (JournalQuota::admit_runless).
  bool admitted_runless(const Event& e, const EventLineParts& parts);
  void schedule();
  /// Flushes `after` from now, on timer_.
  void arm(std::chrono::milliseconds after);
  Journal* open_journal(const std::string& run_id);
  /// Writes `journal`'s buffer; false (keeping what was not written) when
  /// the write failed.
  bool write_out(const std::string& run_id, Journal& journal);

  EventBus& events_;
  const StateStore& store_;
  EventLog& log_;
  std::function<bool(std::string_view)> forgotten_;
  JournalQuota quota_;
  std::function<std::optional<RunOwner>(const std::string&)> owner_of_;
  std::function<void()> over_owner_;
  std::chrono::steady_clock::time_point over_owner_told_{};
  std::set<std::string, std::less<>> refused_;  // runs whose lines were refused (told once)
  std::string pending_note_;  // admitted()'s note line, appended once the refused line is cut off
  std::map<uid_t, std::int64_t> runless_refused_;  // owner -> the hour its run-less events were last refused
  std::map<std::string, Journal, std::less<>> open_;  // run_id -> O_APPEND fd and its unwritten lines
  std::pair<const std::string, Journal>* last_ = nullptr;  // the one open_journal() found last
  // EventLineParts' text, reused by every event (append() is never
  // re-entered: it publishes nothing).
  std::string parts_buffer_;
  std::size_t buffered_ = 0;
  boost::asio::steady_timer timer_;
  bool armed_ = false;
  bool failing_ = false;              // the last flush could not write everything
  std::set<std::string> closing_;     // ended runs whose journal closes once written
  /// Per open ring read (innermost last): the runs whose journal got an event meanwhile.
  std::vector<std::vector<std::string>> ring_reads_;
  std::uint64_t ring_batch_ = 1;  // the batch the next ring marks belong to
  /// Ring id and the owner of the run whose journal marked it -> journaled
  /// to, from the previous lpd.
  std::map<std::pair<std::uint64_t, uid_t>, std::uint64_t> recalled_marks_;
};

}  // namespace lpd::daemon
