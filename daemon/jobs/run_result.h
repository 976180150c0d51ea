#pragma once
// the one word run.list (lpctl runs -a) gives for how a
// supervised run ended.

#include <string>

#include "daemon/jobs/job_lifecycle.h"

namespace lpd::daemon {

/// "stopped" (lpctl stop, Ctrl-C), "passed" (exit code 0, flaky crashes
/// included unless they failed it), "crashed" (a crash pinned on a test
/// that never passed again, or one outside any test), "killed" (the
/// command died by a signal, no crash recorded), else "failed".
/// `returncode`: lpctl run's exit code (final_returncode(facts)).
inline std::string run_result(const FinalFacts& facts, int returncode) {
  if (facts.stopped) return "stopped";
  if (returncode == 0) return "passed";
  if (facts.test_crashes > 0 || facts.outside_crashes > 0) return "crashed";
  if (facts.signal) return "killed";
  return "failed";
}

}  // namespace lpd::daemon
