#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lpd::daemon {

/// The test runners lpd knows how to steer. kNone is any other command:
/// lpd still supervises it, records how it ended, but cannot leave tests
/// out of it or run one alone.
enum class Runner { kNone, kPytest, kGtest, kCatch2, kNative };

std::string_view to_string(Runner runner);
/// "pytest", "gtest" (or "googletest"), "catch2", "native"; nullopt otherwise.
std::optional<Runner> runner_from_name(std::string_view name);
/// The runners that may be named with `lpctl run --runner`, for messages.
std::string_view supported_runners_text();

/// Decides the runner of a command from its argv, without running anything:
/// - pytest: `pytest`, `py.test`, `pytest-3`, `python[3[.X]] -m pytest`,
///   behind `env [K=V...]`, `uv run`, `poetry run`, `pipenv run`;
/// - gtest: any `--gtest_*` argument (GoogleTest reads no other form);
/// - Catch2 and a command with the native shim's C ABI cannot be told from
///   their argv: they are named with `--runner`.
/// `named` (from --runner) wins when given.
Runner detect_runner(const std::vector<std::string>& argv, std::optional<Runner> named = std::nullopt);

/// How an attempt leaves tests out or runs one alone, per runner.
struct AttemptSelection {
  std::vector<std::string> excluded;  // tests that must not run
  std::string only;                   // when set: run this test alone (an isolated rerun)
};

/// How many bytes of `--deselect NODEID` arguments attempt_argv adds at
/// most: far below ARG_MAX (2 MiB with an 8 MiB stack).
inline constexpr std::size_t kMaxDeselectArgvBytes = 256 * 1024;

/// The argv of an attempt: the command's own argv plus what `runner` needs
/// to honour `selection` (the selection also reaches shims through the
/// LPD_DESELECT_FILE / LPD_ONLY_NODEIDS_FILE files, see JobService):
/// - pytest: `--deselect NODEID` per excluded test while those arguments
///   stay within kMaxDeselectArgvBytes (the rest is left to the shim, which
///   reads LPD_DESELECT_FILE; a rerun alone is left to the shim too, which
///   reads LPD_ONLY_NODEIDS_FILE: pytest has no argv form that removes the
///   command's own paths);
/// - gtest: `--gtest_filter` with the excluded tests added to its negative
///   patterns (the last --gtest_filter of argv, else $GTEST_FILTER, merged),
///   or `--gtest_filter=NAME` alone;
/// - Catch2: the command's test spec with `~"name"` added to each of its
///   OR-ed filters, or `"name"` alone;
/// - native, none: argv unchanged.
/// Pause-on-failure is never put in argv (LPD_PAUSE_ON_FAILURE does it).
std::vector<std::string> attempt_argv(Runner runner, const std::vector<std::string>& argv,
                                      const std::vector<std::string>& env, const AttemptSelection& selection);

/// GoogleTest's filter `filter` ("POSITIVE[-NEGATIVE]", ':'-separated) with
/// `excluded` added to its negative patterns.
std::string gtest_filter_without(const std::string& filter, const std::vector<std::string>& excluded);

/// A Catch2 v2 test spec term matching exactly the test case `name`
/// (quoted, with the characters Catch2 treats specially escaped).
std::string catch2_quoted_name(const std::string& name);

/// The testcase name of a command that reported no tests: its basename.
std::string command_test_name(const std::vector<std::string>& argv);

}  // namespace lpd::daemon
