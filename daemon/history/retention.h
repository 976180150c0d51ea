#pragma once

#include <cstddef>
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
};

/// What the retention rule needs to know of one run.
struct RunAge {
  std::string run_id;
  double created_at = 0;
  double ended_at = 0;  // 0 when unknown (an ended run from an old lpd): created_at stands in
  bool active = false;
  uid_t owner = 0;  // keep_runs counts each owner's runs apart
};

/// The runs to remove under `limits` at time `now` (seconds since the
/// epoch), oldest first. An active run is never chosen. A run goes when it
/// ended more than keep_days ago, or when more than keep_runs runs exist
/// and it is among the oldest ended ones (by created_at, then run_id), so
/// that at most keep_runs remain or only active ones are over the limit.
/// Pure: no clock, no I/O.
std::vector<std::string> runs_to_prune(std::vector<RunAge> runs, double now, const RetentionLimits& limits);

}  // namespace lpd::daemon
