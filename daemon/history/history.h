#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/core/operation.h"
#include "daemon/core/event_bus.h"
#include "daemon/history/event_log.h"
#include "daemon/history/retention.h"
#include "daemon/history/seq_record.h"
#include "daemon/history/seq_reservation.h"
#include "daemon/history/run_journal.h"
#include "daemon/runs/run_registry.h"
#include "daemon/core/state_store.h"

namespace lpd::daemon {

/// Told which ended runs retention removed, so what else lpd keeps of them
/// (crash records, a done run's results and output) goes too.
class PruneWatcher {
 public:
  virtual ~PruneWatcher() = default;
  /// `run_ids`: the runs retention is removing, told before their registry
  /// entries, directories and journals go (their crash records must go
  /// first: see History::remove_runs).
  virtual void runs_pruned(const std::set<std::string>& run_ids) = 0;
};

/// History is what lpd keeps of the past and how it is bounded: the
/// journals (per run and global, see RunJournal and EventLog), event seqs
/// that keep increasing across restarts (SeqReservation), reading the kept
/// events in pages, and retention (`lpd start --keep-runs/--keep-days`,
/// `lpctl prune`): removing ended runs' directories, records and events.
class History {
 public:
  /// `pruned`: told of every removal (null: nobody to tell, in tests).
  /// `journal`: how many bytes of event journal a run and a user may have
  /// (JournalQuota); past a user's, retention removes that user's oldest
  /// ended runs.
  History(boost::asio::io_context& io, EventBus& events, const StateStore& store, RunRegistry& runs,
          RetentionLimits limits, PruneWatcher* pruned = nullptr, JournalLimits journal = {});
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  /// Before anything publishes: opens the global journal and continues seqs
  /// past the previous lpd's. Throws std::system_error when the journal
  /// directory cannot be made or read.
  void open();
  /// Once the runs are restored, before anything is published: the events
  /// a previous lpd killed mid-write left in runs' journals only go to the
  /// events journal (RunJournal::restore_lost_batch), looked for in the
  /// journals of the active runs and of the runs ended since the events
  /// journal's last event (less a minute, for the wall clock being set
  /// back). Nothing when the events journal holds no event (removed, or
  /// written by an lpd from before it): then no batch can be told lost.
  /// Returns how many.
  std::size_t restore_lost_batch();
  /// After the registries are restored: applies retention once, then on each
  /// run's end and hourly; starts compacting the journal.
  void start();
  /// Writes everything buffered and stops the timers (lpd is stopping).
  void stop();

  /// Where one walk over the kept events ended.
  struct Walk {
    std::uint64_t last = 0;  // the last seq visited: the cursor to go on from
    bool exhausted = false;  // nothing kept after `last` (at the time of the walk)
  };
  /// Calls `visit` for every kept event with seq > `after`, oldest first,
  /// from the journal on disk and then the in-memory history, until visit
  /// returns false (that event is not counted as visited) or `max_scan_bytes`
  /// of journal were read. Events of removed runs are skipped. `filter`
  /// (optional): journal lines it cannot match are skipped unparsed (visit
  /// must still check it: lines of another shape are parsed and passed).
  Walk walk(std::uint64_t after, std::size_t max_scan_bytes, const std::function<bool(const Event&)>& visit,
            const EventFilter* filter = nullptr);

  /// True for a run retention removed (its events are still being compacted away).
  bool forgotten(std::string_view run_id) const { return forgotten_.count(run_id) != 0; }

  /// What `lpctl prune` asks: limits in place of lpd's own (nullopt: lpd's).
  struct PruneRequest {
    std::optional<std::size_t> keep_runs;
    std::optional<double> keep_days;
    bool dry_run = false;  // list what would go, remove nothing
    /// Every ended run `may_prune` accepts, whatever the limits (0 means
    /// "no limit" for both, so no limit could ask for this).
    bool all = false;
    /// A dry run's page: the selected runs after the first `skip` (a dry
    /// run removes nothing, so the next call's selection starts where the
    /// last page ended). 0 for a real prune, whose removals are the paging.
    std::size_t skip = 0;
  };
  /// What prune did: per run its report line (run_id, owner_uid,
  /// created_at, ended_at, error?), whether more runs are selected than
  /// one call removes, and the limits applied.
  struct Pruned {
    std::vector<json> runs;
    bool more = false;
    RetentionLimits limits;
  };
  /// Removes the ended runs the limits select among those `may_prune`
  /// accepts (the caller's own; every run for root and the admin group),
  /// at most kMaxPrunedPerCall per call (`more` then).
  Pruned prune(const PruneRequest& request, const std::function<bool(const Run&)>& may_prune);
  static constexpr std::size_t kMaxPrunedPerCall = 1000;

  const RetentionLimits& limits() const { return limits_; }
  RunJournal& journal() { return journal_; }

 private:
  /// The runs `limits` select at `now` among those `may_prune` accepts.
  std::vector<std::string> select(const RetentionLimits& limits, double now,
                                  const std::function<bool(const Run&)>& may_prune) const;
  /// Removes runs: registry, directory, journals, then tells pruned_. Returns, per run,
  /// its report line (run_id, owner_uid, created_at, ended_at, error?).
  json remove_runs(const std::vector<std::string>& ids, bool dry_run);
  void apply_limits();
  /// apply_limits() on the next turn of the loop, once however often asked.
  void apply_limits_soon();
  /// Counts every run's journal on disk (one lstat each): kFirstCompactionDelay after start.
  void measure_journals();
  void arm_hourly();
  void request_compaction();
  /// request_compaction() kCompactionAfterRemoval from now, once for every
  /// removal meanwhile: at the retention limit a run ends, and one is
  /// removed, every few seconds on a busy host, and each pass rewrites the
  /// segments that hold the removed runs' events.
  void request_compaction_soon();
  void compact_step();

  /// How long after start the first compaction pass waits: reading every
  /// segment of a large journal (80 MB: about half a second of CPU) would
  /// otherwise come before the first client is answered after a restart.
  static constexpr std::chrono::seconds kFirstCompactionDelay{5};
  /// How long a removal's compaction waits for more removals (readers
  /// never see a removed run's events meanwhile: they are filtered out).
  static constexpr std::chrono::seconds kCompactionAfterRemoval{30};

  boost::asio::io_context& io_;
  EventBus& events_;
  const StateStore& store_;
  RunRegistry& runs_;
  RetentionLimits limits_;
  PruneWatcher* pruned_;
  EventLog log_;
  std::optional<SeqReservation> reservation_;
  SeqRecord seq_record_;
  bool seq_record_failing_ = false;
  /// Removed runs whose events may still sit in the journal or the memory
  /// history, with the last seq published when they were removed.
  std::map<std::string, std::uint64_t, std::less<>> forgotten_;
  RunJournal journal_;
  boost::asio::steady_timer hourly_;
  boost::asio::steady_timer first_compaction_;
  boost::asio::steady_timer compaction_soon_;
  bool compaction_soon_armed_ = false;
  bool compaction_deferred_ = false;  // until first_compaction_ fires: requests wait for it
  bool prune_posted_ = false;
  bool compacting_ = false;
  bool compact_again_ = false;
  std::size_t compact_cursor_ = 0;
  std::uint64_t compact_started_at_seq_ = 0;
  bool stopped_ = false;
};

}  // namespace lpd::daemon
