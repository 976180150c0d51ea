#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon/crashes/crash.h"
#include "daemon/reports/test_result.h"

namespace lpd::daemon {

/// Everything a JUnit report of one run is made of, gathered by its caller
/// (JobService) so that junit_report is a plain function of data.
struct JunitInput {
  std::string suite_name;  // <testsuite name>: suite_name_for(argv, runner)
  /// "pytest", "gtest", "catch2", or "" (unknown): how nodeids become
  /// testcase names and whether file/line attributes are written.
  std::string runner;
  std::string hostname;   // the host's name (gethostname), as pytest's platform.node()
  double started_at = 0;  // the suite's timestamp: the run's start (seconds since the epoch)
  double ended_at = 0;    // suite time = ended_at - started_at: wall clock, as pytest's
  /// Every test.finish of every attempt and process, in arrival order;
  /// also the results lpd makes itself: session errors (phase collection,
  /// sessionstart, sessionfinish or exit), tests interrupted by a stop,
  /// and the one result of a command that reported no tests.
  std::vector<TestResult> results;
  std::vector<Crash> crashes;
  /// Nodeids the run's processes collected (collection.items); those that
  /// got no result and no crash are listed as skipped, "not run: <why>".
  std::vector<std::string> collected;
  std::string not_run_reason;
  /// False when no connection of the run ever sent test.start: its results
  /// and crashes are about the command itself (nodeid: its basename), one
  /// testcase named after it.
  bool tests_reported = true;
  /// by nodeid, the <system-err> text of a test that left
  /// processes running when the command ended (its outcome is unchanged).
  std::map<std::string, std::string> system_err;
  /// Not empty when lpd knows results of this run are missing from
  /// `results`, and why (its events journal stopped keeping events, and the
  /// results were read back from it): one <error> testcase "results not
  /// kept" says so, after the others, so the report is never green then.
  std::string results_missing;
};

/// Builds the JUnit XML of a run in the dialect of pytest's --junitxml
/// (junit_family xunit2, read by Jenkins and GitLab), written so that each
/// testcase of a pytest run has the classname, name, outcome element,
/// message and text pytest itself writes (README: "JUnit report:
/// differences from pytest's --junitxml" lists what differs on purpose).
/// Rules beyond pytest's:
///  - the latest attempt of each test wins (retries, xdist replacements);
///  - a crash is an <error type="crash"> with the signal and the traceback;
///    a crash a later run of the same test passed after is a flaky crash: the
///    test passes and carries <flakyError> (Maven Surefire's form);
///  - an interrupted test is an <error message="interrupted during PHASE ...">;
///  - failures and crashes outside tests are testcases named for the phase;
///  - collected tests that never ran are <skipped message="not run: ...">;
///  - a command that reported no tests is one testcase carrying its exit
///    status or its crash;
///  - results lpd knows it lost (results_missing) are one <error> testcase.
std::string junit_report(const JunitInput& input);

/// The message of a collected test without a result, for
/// JunitInput::not_run_reason: "not run: " and why ("the run was stopped",
/// "a test process crashed (SIGSEGV in NODEID)", "the command was killed by
/// SIGKILL", "the command exited with code 2 before running them", "the
/// command ended before running them"); or, when a process died while lpd
/// was away (results_lost_with), "result unknown: ..." saying it may have run.
std::string never_run_reason(bool stopped, std::optional<int> exit_code, std::optional<int> signal,
                             const std::vector<Crash>& crashes);

/// datetime.fromtimestamp(t).isoformat(), as pytest writes the suite's
/// timestamp: local time, microseconds only when not zero.
std::string iso_timestamp(double t);

}  // namespace lpd::daemon
