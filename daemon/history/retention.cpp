#include "daemon/history/retention.h"

#include <map>

#include <algorithm>
#include <tuple>

namespace lpd::daemon {

std::vector<std::string> runs_to_prune(std::vector<RunAge> runs, double now, const RetentionLimits& limits) {
  std::sort(runs.begin(), runs.end(), [](const RunAge& a, const RunAge& b) {
    return std::tie(a.created_at, a.run_id) < std::tie(b.created_at, b.run_id);
  });
  const double cutoff = limits.keep_days > 0 ? now - limits.keep_days * 86400.0 : 0;
  // Per owner: on a shared host one user's many runs must not push out
  // another user's (their crash records and reports went with them).
  std::map<uid_t, std::size_t> remaining;
  std::map<uid_t, std::uint64_t> journal_bytes;
  std::map<uid_t, const RunAge*> newest;  // never removed for its bytes: the run just ended would vanish
  for (const auto& run : runs) {
    ++remaining[run.owner];
    journal_bytes[run.owner] += run.journal_bytes;
    newest[run.owner] = &run;
  }
  std::vector<std::string> out;
  for (const auto& run : runs) {
    if (run.active) continue;
    const double ended = run.ended_at > 0 ? run.ended_at : run.created_at;
    const bool too_old = limits.keep_days > 0 && ended < cutoff;
    std::size_t& owners = remaining[run.owner];
    const bool too_many = limits.keep_runs > 0 && owners > limits.keep_runs;
    std::uint64_t& bytes = journal_bytes[run.owner];
    const bool too_big = limits.keep_journal_bytes > 0 && bytes > limits.keep_journal_bytes && newest[run.owner] != &run;
    if (!too_old && !too_many && !too_big) continue;
    out.push_back(run.run_id);
    --owners;
    bytes -= std::min(bytes, run.journal_bytes);
  }
  return out;
}

}  // namespace lpd::daemon
