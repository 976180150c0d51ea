#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <sys/types.h>

namespace lpd::daemon {

/// How much history lpd keeps (`lpd start --keep-runs N --keep-days D`;
/// `lpctl prune` may ask for less). 0 means no limit of that kind.
struct RetentionLimits {
  static constexpr std::size_t kDefaultKeepRuns = 1000;
  static constexpr double kDefaultKeepDays = 30;

  std::size_t keep_runs = kDefaultKeepRuns;  // each owner's newest N runs (active ones count) are kept
  double keep_days = kDefaultKeepDays;       // ended runs older than this are removed
  /// Each owner's runs' event journals together at most this many bytes:
  /// past it, that owner's oldest ended runs go (JournalLimits::per_owner,
  /// `lpd start --run-events-per-user-max`); 0 = no limit.
  std::uint64_t keep_journal_bytes = 0;
};

/// What the retention rule needs to know of one run.
struct RunAge {
  std::string run_id;
  double created_at = 0;
  double ended_at = 0;  // 0 when unknown (an ended run from an old lpd): created_at stands in
  bool active = false;
  uid_t owner = 0;  // keep_runs counts each owner's runs apart
  std::uint64_t journal_bytes = 0;  // its events.jsonl, for keep_journal_bytes
};

/// The runs to remove under `limits` at time `now` (seconds since the
/// epoch), oldest first. An active run is never chosen. A run goes when it
/// ended more than keep_days ago, or when more than keep_runs runs exist
/// and it is among the oldest ended ones (by created_at, then run_id), so
/// that at most keep_runs remain or only active ones are over the limit;
/// and, while an owner's runs' journal_bytes together exceed
/// keep_journal_bytes, that owner's oldest ended runs (likewise), never
/// the owner's newest run (its report is what its user reads next).
/// Pure: no clock, no I/O.
std::vector<std::string> runs_to_prune(std::vector<RunAge> runs, double now, const RetentionLimits& limits);

}  // namespace lpd::daemon
