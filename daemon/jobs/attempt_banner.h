#pragma once
// the line lpd writes into a run's output before each
// re-run of its command, so whoever reads the output (lpctl run, lpctl
// attach, the log file) sees where one attempt ends and the next begins.

#include <string>

#include "daemon/jobs/job_lifecycle.h"

namespace lpd::daemon {

/// The banner of the attempt about to start, one line ending in '\n':
/// "lpd: attempt 3: retry 1/2: re-running without 1 crashed test" for a
/// retry (retry `plan.retries_done` of `plan.retry_crashed`: the plan has
/// counted it when it starts), "lpd: attempt 2: rerun 1/2: re-running
/// crashed test NODEID alone" for an isolated rerun of `only`
/// (`plan.reruns_done` counts a rerun once it ended); "" for the first
/// attempt. `attempt` is the job's attempt number (job.json's `attempt`,
/// which counts every start of the command), so the banner and lpctl's
/// records agree when retries and reruns mix.
inline std::string attempt_banner(AttemptKind kind, const AttemptPlan& plan, const std::string& only, int attempt) {
  const std::string head = "lpd: attempt " + std::to_string(attempt) + ": ";
  if (kind == AttemptKind::kRetry) {
    const std::size_t n = plan.excluded.size();
    return head + "retry " + std::to_string(plan.retries_done) + "/" + std::to_string(plan.retry_crashed) +
           ": re-running without " + std::to_string(n) + " crashed test" + (n == 1 ? "" : "s") + "\n";
  }
  if (kind == AttemptKind::kIsolatedRerun) {
    const auto done = plan.reruns_done.find(only);
    const int number = (done == plan.reruns_done.end() ? 0 : done->second) + 1;
    return head + "rerun " + std::to_string(number) + "/" + std::to_string(plan.rerun_crashed) +
           ": re-running crashed test " + only + " alone\n";
  }
  return "";
}

}  // namespace lpd::daemon
