#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace lpd::daemon {

/// TestResult is one test.finish message: the whole outcome of one test
/// (setup, call and teardown) in one attempt of a run. The JUnit fields are
/// what pytest's --junitxml would write for it, computed by the shim.
struct TestResult {
  std::string nodeid;
  std::string outcome;  // passed, failed, skipped, error (setup/teardown failed), interrupted
  /// The phase that decided the outcome (or was running when interrupted):
  /// setup, call, teardown; for a failure outside tests (session.error)
  /// collection, sessionstart, sessionfinish or exit.
  std::string phase;
  double duration = 0;
  std::string message;  // short failure text (reprcrash.message), or the skip reason
  std::string worker_id;
  int attempt = 1;
  /// The body of <failure>/<error>/<skipped> exactly as pytest writes it
  /// (str(report.longrepr), with file:line); at most kMaxLongrepr bytes.
  std::string longrepr;
  /// The test's location (pytest's report.location, or gtest's/Catch2's own).
  std::string file;
  std::optional<long long> line;
  /// The testcase names as the runner's own JUnit writes them; empty: lpd
  /// derives them from the nodeid.
  std::string classname;
  std::string name;
  /// pytest-rerunfailures reruns before this final outcome.
  int reruns = 0;
  /// `lpctl resume --failure-reason` text that decided the outcome.
  std::string failure_reason;
  /// Set when pytest marked the test as an expected failure (its report
  /// had `wasxfail`): the reason as pytest's junitxml writes it in
  /// <skipped type="pytest.xfail" message=...> (without "reason: ").
  std::optional<std::string> xfail_reason;
  /// What the test's helpers (supervised processes) wrote to their logs
  /// while it ran, sent by the shim for a test that failed; written as
  /// the testcase's <system-out>. At most kMaxSystemOut bytes.
  std::string system_out;
  /// A failed command's stderr excerpt (a run that kept stderr apart, which
  /// only a command without a shim reports as one testcase): the
  /// testcase's <system-err>. At most kMaxSystemOut bytes.
  std::string system_err;

  nlohmann::json to_json() const;
  /// to_json() as compact JSON text, written without building the tree
  /// (the members in the same order): what test.finish publishes for
  /// every test. Reads back equal to to_json().
  std::string to_json_text() const;
  static TestResult from_json(const nlohmann::json& j);
};

/// How much of a longrepr lpd keeps (64 KiB): a traceback of recursion
/// depth 1000 is still shown in full by most CI pages at this size.
constexpr std::size_t kMaxLongrepr = 64 * 1024;

/// How much of a failed test's helper log lines lpd keeps (64 KiB).
constexpr std::size_t kMaxSystemOut = 64 * 1024;

/// Whether `phase` is a failure outside any test (session.error's phases:
/// collection, sessionstart, sessionfinish, exit) rather than setup, call
/// or teardown. Compared as views: once per result at a run's end.
inline bool is_session_phase(std::string_view phase) {
  return phase == "collection" || phase == "sessionstart" || phase == "sessionfinish" || phase == "exit";
}

/// How much failure text (longrepr, system_out, system_err) one run keeps
/// in memory in all (256 MiB): past it, each further result's texts are
/// cut to 4 KiB, saying so. A suite of thousands of failures with 64 KiB
/// tracebacks took lpd to hundreds of MB per run.
constexpr std::size_t kMaxRunFailureText = 256u << 20;

/// Counts `r`'s failure texts into `used` (the run's total so far) and,
/// once the total is past `budget`, cuts them (truncated_text, 4 KiB each).
void keep_within_budget(TestResult& r, std::size_t& used, std::size_t budget = kMaxRunFailureText);

/// `text` cut to at most `limit` bytes at a UTF-8 character boundary, with
/// a line saying how much was cut when it was.
std::string truncated_text(std::string text, std::size_t limit);

}  // namespace lpd::daemon
