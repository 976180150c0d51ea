#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>

namespace lpd::daemon {

/// How much of the state directory runs' event journals
/// (runs/<id>/events.jsonl) may take (`lpd start --run-events-max`,
/// `--run-events-per-user-max`). Every event of a run is written twice,
/// there and in lpd's events journal, and a shim may send as many as it
/// likes: one user's connection wrote 5.2 GB of events in 20 s (the
/// attack), with no bound but the disk shared with every other user.
struct JournalLimits {
  /// 1 GiB: about two million tests of a real suite (two lines of about
  /// 250 bytes per test).
  static constexpr std::uint64_t kDefaultPerRun = 1024ull * 1024 * 1024;
  static constexpr std::uint64_t kDefaultPerOwner = 4ull * 1024 * 1024 * 1024;

  std::uint64_t per_run = kDefaultPerRun;      // one run's journal; 0 = no limit
  std::uint64_t per_owner = kDefaultPerOwner;  // all of a uid's kept runs' journals; 0 = no limit
  /// Events of no run (process.*: a helper's record, its argv up to
  /// 256 KiB) leave lpd's events journal only by age (--keep-days): an
  /// owner's such events within this many seconds may take per_owner
  /// bytes too (0: since lpd started). History sets it to keep_days.
  double runless_window_seconds = 30 * 86400.0;
};

/// JournalQuota counts the bytes of each kept run's journal and says
/// whether one more line may be written. Plain bookkeeping, no I/O: the
/// caller measures files and writes lines.
///
/// Rules:
/// - A line that would take its run's journal past `per_run` is refused
///   (kRunFull).
/// - A line of an active run that would take its owner's active runs'
///   journals together past `per_owner` is refused (kOwnerFull): only
///   ended runs can be removed to make room, so the running ones alone
///   must fit.
/// - An owner whose runs together (ended ones too) are past `per_owner` is
///   over_owner(): retention removes that owner's oldest ended runs
///   (runs_to_prune, RunAge::journal_bytes) until they fit. Another user's
///   runs are never removed for it.
/// - Lines a run writes as its journal's own bookkeeping (the note that
///   lines were refused) are counted with force(), never refused.
class JournalQuota {
 public:
  enum class Verdict { kWrite, kRunFull, kOwnerFull };

  explicit JournalQuota(JournalLimits limits) : limits_(limits) {}

  /// Run `run_id` of `owner` has `bytes` in its journal on disk (measured
  /// at restore, or when its journal opens): replaces what was counted.
  void measured(const std::string& run_id, uid_t owner, std::uint64_t bytes, bool active);
  /// The run's command and processes are over: it now counts as ended
  /// (removable by retention). Unknown runs: no-op.
  void ended(std::string_view run_id);
  /// Whether a line of `bytes` may go to the journal of `run_id` (which
  /// must have been measured(); an unknown run is written, counted as an
  /// active run of `owner` from 0). Counts it when kWrite.
  Verdict admit(const std::string& run_id, uid_t owner, std::uint64_t bytes);
  /// Whether an event of no run (a line of `bytes` in lpd's events
  /// journal only) of `owner` at `now` (seconds since the epoch) may be
  /// written: kOwnerFull when that owner's such lines within
  /// runless_window_seconds would pass per_owner. Counts it when kWrite.
  /// Counted from lpd's start: a restarted lpd does not know the earlier ones.
  Verdict admit_runless(uid_t owner, std::uint64_t bytes, double now);
  /// Counts `bytes` written to `run_id`'s journal whatever the limits.
  void force(const std::string& run_id, uid_t owner, std::uint64_t bytes);
  /// The run was removed: its bytes no longer count.
  void forget(std::string_view run_id);

  /// Bytes counted for `run_id` (0 when unknown).
  std::uint64_t run_bytes(std::string_view run_id) const;
  /// Bytes of all of `owner`'s counted runs, and of the active ones.
  std::uint64_t owner_bytes(uid_t owner) const;
  std::uint64_t owner_active_bytes(uid_t owner) const;
  /// True when `owner`'s runs together are past per_owner (never with no limit).
  bool over_owner(uid_t owner) const;

  const JournalLimits& limits() const { return limits_; }

 private:
  struct RunBytes {
    uid_t owner = 0;
    std::uint64_t bytes = 0;
    bool active = true;
  };
  struct OwnerBytes {
    std::uint64_t all = 0;
    std::uint64_t active = 0;
  };
  RunBytes& known(const std::string& run_id, uid_t owner);
  void add(RunBytes& run, std::uint64_t bytes);
  void subtract(const RunBytes& run);

  /// An owner's run-less bytes, per hour (hours since the epoch), oldest first.
  struct Runless {
    std::deque<std::pair<std::int64_t, std::uint64_t>> hours;
    std::uint64_t total = 0;
  };

  JournalLimits limits_;
  std::map<uid_t, Runless> runless_;
  std::map<std::string, RunBytes, std::less<>> runs_;
  std::map<uid_t, OwnerBytes> owners_;
};

}  // namespace lpd::daemon
