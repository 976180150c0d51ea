#pragma once
// h18cli (issue 18): the line lpd writes into a run's output before each
// re-run of its command, so whoever reads the output (lpctl run, lpctl
// attach, the log file) sees where one attempt ends and the next begins.

#include <string>

#include "daemon/runs/job_lifecycle.h"

namespace lpd::daemon {

/// The banner of the attempt about to start, one line ending in '\n':
/// "lpd: attempt 2/3: re-running without 1 crashed test" for a retry
/// (attempt `plan.retries_done + 1` of `plan.retry_crashed + 1`), "lpd:
/// rerun 1/2: re-running crashed test NODEID alone" for an isolated rerun
/// of `only`; "" for the first attempt. `plan` as it is when the attempt
/// starts (AttemptPlan::after_attempt has counted it).
inline std::string attempt_banner(AttemptKind kind, const AttemptPlan& plan, const std::string& only) {
  if (kind == AttemptKind::kRetry) {
    const std::size_t n = plan.excluded.size();
    return "lpd: attempt " + std::to_string(plan.retries_done + 1) + "/" + std::to_string(plan.retry_crashed + 1) +
           ": re-running without " + std::to_string(n) + " crashed test" + (n == 1 ? "" : "s") + "\n";
  }
  if (kind == AttemptKind::kIsolatedRerun) {
    const auto done = plan.reruns_done.find(only);
    const int number = (done == plan.reruns_done.end() ? 0 : done->second) + 1;
    return "lpd: rerun " + std::to_string(number) + "/" + std::to_string(plan.rerun_crashed) +
           ": re-running crashed test " + only + " alone\n";
  }
  return "";
}

}  // namespace lpd::daemon
