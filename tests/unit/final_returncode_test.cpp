// The final exit code of `lpctl run` and its one-line verdict
// (daemon/jobs/job_lifecycle.h): one row per rule of final_returncode, each
// with the text run_verdict_text gives for it.
#include <csignal>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "daemon/jobs/job_lifecycle.h"

using namespace lpd::daemon;

// Each row names only the facts it sets (designated initializers); the
// others keep FinalFacts' defaults, which is what GCC warns about.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace {

struct ReturncodeRow {
  const char* what;
  FinalFacts facts;
  std::size_t crashes;  // the run's crash records, as run.done counts them
  int returncode;
  std::string text;
};

}  // namespace

TEST_CASE("final exit code and verdict, rule by rule", "[job]") {
  const std::vector<ReturncodeRow> rows = {
      // The command's own code.
      {"a green run", {.exit_code = 0}, 0, 0, "exited with code 0"},
      {"pytest's own failure code stands", {.exit_code = 2}, 0, 2, "exited with code 2"},
      {"a signal death is 128+N", {.signal = SIGSEGV}, 0, 128 + SIGSEGV, "killed by SIGSEGV"},
      {"no exit status at all: 1, never a made-up code", {}, 0, 1,
       "ended with no exit status lpd could read (its lpd-monitor is gone); the run fails with exit code 1: how the "
       "command ended is not known"},
      // A stop.
      {"stopped, tests cut short: never 0", {.exit_code = 0, .stopped = true, .interrupted_tests = 1}, 0, 1,
       "exited with code 0, 1 interrupted; the run fails with exit code 1: it was stopped with tests unfinished"},
      {"stopped after a test crashed: never 0", {.exit_code = 0, .stopped = true, .test_crashes = 1}, 1, 1,
       "exited with code 0, 1 crash(es); the run fails with exit code 1: it was stopped after a test crashed"},
      {"stopped, killed by the stop's signal: 128+N",
       {.signal = SIGINT, .stopped = true, .interrupted_tests = 1}, 0, 128 + SIGINT, "killed by SIGINT, 1 interrupted"},
      {"stopped between tests, exited cleanly: 0", {.exit_code = 0, .stopped = true}, 0, 0, "exited with code 0"},
      {"stopped, its own failure code stands", {.exit_code = 2, .stopped = true, .test_crashes = 1}, 1, 2,
       "exited with code 2, 1 crash(es)"},
      // Outside any test.
      {"a crash outside tests turns 0 into 128+N of its signal",
       {.exit_code = 0, .outside_crashes = 1, .outside_signal = SIGABRT}, 1, 128 + SIGABRT,
       "exited with code 0, 1 crash(es); the run fails with exit code 134: a crash or error outside any test"},
      {"...and pytest's 5 (no tests ran), with no signal known, into 1",
       {.exit_code = 5, .outside_crashes = 1}, 1, 1,
       "exited with code 5, 1 crash(es); the run fails with exit code 1: a crash or error outside any test"},
      {"a session error turns 5 into 1", {.exit_code = 5, .session_errors = 1}, 0, 1,
       "exited with code 5; the run fails with exit code 1: a crash or error outside any test"},
      {"outside tests, the command's own failure stands", {.exit_code = 2, .outside_crashes = 1}, 1, 2,
       "exited with code 2, 1 crash(es)"},
      // Test crashes.
      {"a test crash turns 0 into 1", {.exit_code = 0, .test_crashes = 1}, 1, 1,
       "exited with code 0, 1 crash(es); the run fails with exit code 1: a test crashed"},
      {"a test crash beside pytest's 1", {.exit_code = 1, .test_crashes = 1}, 1, 1, "exited with code 1, 1 crash(es)"},
      {"the command died of its test's crash", {.signal = SIGSEGV, .test_crashes = 1}, 1, 128 + SIGSEGV,
       "killed by SIGSEGV, 1 crash(es)"},
      {"interrupted tests without a stop (a worker killed by SIGTERM) are never 0",
       {.exit_code = 0, .interrupted_tests = 1}, 0, 1,
       "exited with code 0, 1 interrupted; the run fails with exit code 1: tests were interrupted"},
      // Flaky crashes: crashed, then passed when run again.
      {"flaky alone, exit 0: 0", {.exit_code = 0, .flaky_crashes = 1}, 1, 0, "exited with code 0, 1 crash(es), 1 flaky"},
      {"flaky with --fail-on-flaky: 1", {.exit_code = 0, .flaky_crashes = 1, .fail_on_flaky = true}, 1, 1,
       "exited with code 0, 1 crash(es), 1 flaky; the run fails with exit code 1: a flaky crash (--fail-on-flaky)"},
      {"xdist's 1 for the crashed worker's test is the flaky crash itself: 0", {.exit_code = 1, .flaky_crashes = 1}, 1,
       0, "exited with code 1, 1 crash(es), 1 flaky; the run passes with exit code 0: every crash passed when re-run"},
      {"the command died of the flaky crash: 0", {.signal = SIGSEGV, .flaky_crashes = 1}, 1, 0,
       "killed by SIGSEGV, 1 crash(es), 1 flaky; the run passes with exit code 0: every crash passed when re-run"},
      {"flaky, but another test failed: the command's code", {.exit_code = 1, .flaky_crashes = 1, .failed_tests = 1},
       1, 1, "exited with code 1, 1 crash(es), 1 flaky"},
      {"flaky, but tests after it never ran: the command's code",
       {.signal = SIGSEGV, .flaky_crashes = 1, .never_ran = 2}, 1, 128 + SIGSEGV,
       "killed by SIGSEGV, 1 crash(es), 1 flaky, 2 never ran"},
      {"flaky, but the code is none a crash makes (4, usage error)", {.exit_code = 4, .flaky_crashes = 1}, 1, 4,
       "exited with code 4, 1 crash(es), 1 flaky"},
      {"a real crash next to a flaky one decides", {.exit_code = 0, .test_crashes = 1, .flaky_crashes = 1}, 2, 1,
       "exited with code 0, 2 crash(es), 1 flaky; the run fails with exit code 1: a test crashed"},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    const int code = final_returncode(row.facts);
    CHECK(code == row.returncode);
    // As JobService::finish_job decides it: lpctl ends by the signal when
    // the run's code is that signal's.
    const bool signal_is_verdict = row.facts.signal && code == 128 + *row.facts.signal;
    CHECK(run_verdict_text(row.facts, code, signal_is_verdict, 1, row.crashes) == row.text);
    // After a retry or rerun the facts are those of the last full run.
    CHECK(run_verdict_text(row.facts, code, signal_is_verdict, 3, row.crashes) == "its last full run " + row.text);
  }
}
