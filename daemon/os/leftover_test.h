#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// which test was running when a process that a run
// left running was started. Two sources, both plain rules over data:
//  - the process's own environment: pytest sets PYTEST_CURRENT_TEST
//    ("NODEID (PHASE)") during each phase of each test, and whatever a test
//    starts with exec inherits it (through setsid and double forks too);
//  - failing that, time: the process's start time against the spans of the
//    tests lpd saw start and finish (its event history).
// lpd-monitor uses the first (it reads /proc/PID/environ before the kill);
// lpd the second. No I/O here, nothing but the standard library: built
// into lpd-monitor as well.

namespace lpd::daemon {

/// The longest nodeid lpd accepts anywhere (test.start refuses longer ones).
constexpr std::size_t kMaxLeftoverNodeidBytes = 16 * 1024;

/// How much of /proc/PID/environ lpd-monitor reads: the variable may be
/// anywhere in it, and the command's user decides its size.
constexpr std::size_t kMaxEnvironBytes = 256 * 1024;

/// The value of the first `name`=VALUE entry of /proc/PID/environ's bytes
/// ("K=V\0K=V\0...", as getenv() finds it); nullopt when there is none.
/// A last entry cut by a bounded read counts as absent: its value may be cut.
std::optional<std::string_view> environ_value(std::string_view environ, std::string_view name, bool cut = false);

/// A test named by PYTEST_CURRENT_TEST.
struct CurrentTest {
  std::string nodeid;
  std::string phase;  // setup, call or teardown
};

/// PYTEST_CURRENT_TEST's value as pytest writes it
/// (_pytest/runner.py _update_current_test_var: f"{item.nodeid} ({when})").
/// nullopt for any other shape, an empty nodeid, or one longer than
/// kMaxLeftoverNodeidBytes. Bytes that are not valid UTF-8, and control
/// characters, become '?' (the nodeid goes into JSON and log lines).
std::optional<CurrentTest> parse_pytest_current_test(std::string_view value);

/// `bytes` as printable, valid UTF-8: control bytes and bytes of invalid
/// sequences (overlong forms, surrogates) each become '?'; NULs become
/// `nul` (a space for an argv, '?' elsewhere). At most `max_bytes` of
/// output, then "..." (never cut inside a character).
std::string printable_utf8(std::string_view bytes, std::size_t max_bytes, char nul = '?');

/// The wall-clock time (seconds since the epoch) a process started, from
/// its /proc/PID/stat start time (`start_ticks` clock ticks after boot,
/// `ticks_per_second` of them a second) and two clocks read together now:
/// CLOCK_BOOTTIME (seconds since boot, which the start time counts in) and
/// CLOCK_REALTIME. Accurate to one tick.
double start_wall_time(std::uint64_t start_ticks, long ticks_per_second, double boot_now, double real_now);

/// One test as lpd saw it on one worker: from its test.start to its
/// test.finish (lpd's clock when each was handled; each comes after the
/// moment it tells of, never before).
struct TestSpan {
  std::string worker_id;
  std::string nodeid;
  double started = -std::numeric_limits<double>::infinity();  // -inf: before what lpd still holds
  double finished = std::numeric_limits<double>::infinity();  // inf: no finish seen (yet)
};

/// Builds the TestSpans of one run from its test.start and test.finish
/// events, in the order they happened.
class TestSpanBuilder {
 public:
  /// A test starts on `worker`: a test still open there ended before it
  /// (a worker runs one test at a time; its finish was lost).
  void started(std::string_view worker, std::string_view nodeid, double time);
  /// A test finished on `worker`: closes its open span, or, when its start
  /// is older than what lpd still holds, makes one that began earlier.
  void finished(std::string_view worker, std::string_view nodeid, double time);
  const std::vector<TestSpan>& spans() const { return spans_; }

 private:
  std::vector<TestSpan> spans_;
};

/// The nodeids of the tests that may have been running when a process
/// started at a time in [`from`, `to`] (its start time and one tick
/// later), in the order they started, each once. A test counts unless it
/// surely finished before `from` (its test.finish was handled earlier) or
/// surely started after `to` (its test.start was handled more than `lag`
/// seconds later: how late lpd may handle a message after it was sent).
std::vector<std::string> tests_running_between(const std::vector<TestSpan>& spans, double from, double to,
                                               double lag);

/// One process a run's command left running, as lpd reports it (run.info,
/// the run's text, lpd's log, the JUnit of the test that started it).
struct LeftProcess {
  int pid = 0;
  std::string argv;  // describe_cmdline of its /proc/PID/cmdline
  int attempt = 1;
  /// The test it started in (one), or the tests it may have started in (by
  /// start time, at most kMaxCandidates); empty: no test known.
  std::vector<std::string> tests;
  std::string phase;     // from PYTEST_CURRENT_TEST; "" otherwise
  std::string known_by;  // kByEnvironment, kByStartTime, or "" (no test known)
  std::string unknown;   // no test known: why, when there is more to say

  static constexpr const char* kByEnvironment = "PYTEST_CURRENT_TEST";
  static constexpr const char* kByStartTime = "start time";
  static constexpr std::size_t kMaxCandidates = 3;
  /// How much of a nodeid the one-line form shows.
  static constexpr std::size_t kLineNodeidBytes = 512;

  /// "pid P: ARGV (started during NODEID, call)", "... (started during
  /// NODEID, by its start time)", "... (started during one of: A; B, by its
  /// start time)", "... (no test known)", "... (no test known: WHY)".
  std::string line() const;
  /// The sentence for the <system-err> of the one test it started in.
  std::string junit_line() const;
};

/// The test of a leftover by start time: `tests` (tests_running_between)
/// become LeftProcess::tests when there are at most kMaxCandidates; with
/// none, or too many, no test is known and `unknown` says why.
void attribute_by_start_time(LeftProcess& left, const std::vector<std::string>& tests, double lag);

}  // namespace lpd::daemon
