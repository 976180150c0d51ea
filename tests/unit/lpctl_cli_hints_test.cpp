// h18cli (issue 18): what lpctl adds to a refused command line, the crash
// reason beside its test, and the banner between two attempts of a run.
#include <catch2/catch.hpp>

#include "client/cli_hints.h"
#include "client/crash_line.h"
#include "daemon/jobs/attempt_banner.h"
#include "daemon/jobs/run_result.h"

using lpd::client::command_word_index;
using lpd::client::dashdash_hint;
using lpd::client::edit_distance;
using lpd::client::reason_beside_test;
using lpd::client::suggest_command;

namespace {
const std::vector<std::string> kCommands = {"status", "ping", "ls", "watch", "resume", "run", "attach", "runs",
                                            "stop", "events", "crashes", "prune", "report", "ensure", "ps",
                                            "logs", "kill", "kill-all"};
}

TEST_CASE("edit distance counts inserts, deletes, replacements and swaps") {
  CHECK(edit_distance("runs", "runs") == 0);
  CHECK(edit_distance("rusn", "runs") == 1);  // a swap
  CHECK(edit_distance("run", "runs") == 1);
  CHECK(edit_distance("", "ls") == 2);
  CHECK(edit_distance("kitten", "sitting") == 3);
}

TEST_CASE("a mistyped command gets the nearest one") {
  CHECK(suggest_command("rusn", kCommands) == "runs");
  CHECK(suggest_command("crashs", kCommands) == "crashes");
  CHECK(suggest_command("atach", kCommands) == "attach");
  CHECK(suggest_command("staus", kCommands) == "status");
  CHECK(suggest_command("even", kCommands) == "events");  // the start of one
  CHECK(suggest_command("runz", kCommands) == "runs");    // a tie: the one as long as the typed word
  CHECK(suggest_command("rn", kCommands) == "run");       // a tie among equally long: the first in help order
}

TEST_CASE("no suggestion for a known command or for nothing close") {
  CHECK_FALSE(suggest_command("runs", kCommands));
  CHECK_FALSE(suggest_command("", kCommands));
  CHECK_FALSE(suggest_command("frobnicate", kCommands));
  CHECK_FALSE(suggest_command("x", kCommands));
}

TEST_CASE("the command word comes after lpctl's global options and their values") {
  CHECK(command_word_index({"runz"}) == 0u);
  CHECK(command_word_index({"--socket", "/s", "--json", "runz", "-a"}) == 3u);
  CHECK(command_word_index({"--timeout", "3", "run"}) == 2u);
  CHECK_FALSE(command_word_index({"--json"}));
  CHECK_FALSE(command_word_index({"--", "run"}));
}

TEST_CASE("a command with options and no -- before it gets the -- hint") {
  const auto hint = dashdash_hint("run", {"pytest", "-q"});
  REQUIRE(hint);
  CHECK(hint->find("put -- before the command") != std::string::npos);
  CHECK(hint->find("lpctl run [OPTIONS] -- COMMAND") != std::string::npos);
  CHECK(dashdash_hint("run", {"--name", "x", "pytest", "-x", "tests"}));
}

TEST_CASE("no -- hint when -- is there or no option follows the command") {
  CHECK_FALSE(dashdash_hint("run", {"--bogus", "--", "pytest", "-q"}));  // lpctl's own unknown option
  CHECK_FALSE(dashdash_hint("run", {"--bogus"}));
  CHECK_FALSE(dashdash_hint("run", {"pytest", "tests"}));
  CHECK_FALSE(dashdash_hint("run", {}));
}

TEST_CASE("knowing which options take a value, a command's own options are caught before lpctl takes them") {
  const std::vector<std::string> values = {"--name", "--env", "--grace", "--timeout"};
  // Issue-18 attack (7): lpctl took pytest's --timeout 30, and --name hello, as its own.
  CHECK(dashdash_hint("run", {"pytest", "tests/", "--timeout", "30"}, values));
  CHECK(dashdash_hint("run", {"echo", "--name", "hello"}, values));
  // lpctl's own options (and their values) before the command are fine.
  CHECK_FALSE(dashdash_hint("run", {"--name", "x", "--detach", "pytest"}, values));
  CHECK_FALSE(dashdash_hint("run", {"--name=x", "--detach", "pytest", "tests"}, values));
  CHECK_FALSE(dashdash_hint("run", {"--name", "x", "--", "pytest", "-q"}, values));
  CHECK(dashdash_hint("run", {"--name", "x", "pytest", "-q"}, values));
}

TEST_CASE("a crash reason drops the test lpctl already printed") {
  CHECK(reason_beside_test("killed by SIGSEGV while running t.py::test_a (call)", "t.py::test_a", "call") ==
        "killed by SIGSEGV");
  CHECK(reason_beside_test("killed by SIGSEGV while running t.py::test_a (told by the xdist controller)",
                           "t.py::test_a", "") == "killed by SIGSEGV (told by the xdist controller)");
  // Another test's name, a longer nodeid, or no nodeid: unchanged.
  CHECK(reason_beside_test("killed by SIGABRT while running t.py::test_b", "t.py::test_a", "call") ==
        "killed by SIGABRT while running t.py::test_b");
  CHECK(reason_beside_test("killed by SIGABRT while running t.py::test_ab", "t.py::test_a", "") ==
        "killed by SIGABRT while running t.py::test_ab");
  CHECK(reason_beside_test("exited with code 3", "", "") == "exited with code 3");
}

TEST_CASE("the banner between attempts names the attempt and what is left out") {
  using lpd::daemon::AttemptKind;
  lpd::daemon::AttemptPlan plan;
  plan.retry_crashed = 2;
  plan.retries_done = 1;
  plan.excluded = {"t.py::test_a"};
  CHECK(lpd::daemon::attempt_banner(AttemptKind::kRetry, plan, "", 2) ==
        "lpd: attempt 2: retry 1/2: re-running without 1 crashed test\n");
  plan.retries_done = 2;
  plan.excluded.push_back("t.py::test_b");
  // After an isolated rerun the job's attempt runs ahead of the retries.
  CHECK(lpd::daemon::attempt_banner(AttemptKind::kRetry, plan, "", 4) ==
        "lpd: attempt 4: retry 2/2: re-running without 2 crashed tests\n");
  plan.rerun_crashed = 2;
  CHECK(lpd::daemon::attempt_banner(AttemptKind::kIsolatedRerun, plan, "t.py::test_a", 2) ==
        "lpd: attempt 2: rerun 1/2: re-running crashed test t.py::test_a alone\n");
  plan.reruns_done["t.py::test_a"] = 1;
  CHECK(lpd::daemon::attempt_banner(AttemptKind::kIsolatedRerun, plan, "t.py::test_a", 3) ==
        "lpd: attempt 3: rerun 2/2: re-running crashed test t.py::test_a alone\n");
  CHECK(lpd::daemon::attempt_banner(AttemptKind::kFull, plan, "", 1).empty());
}

TEST_CASE("a supervised run's result word in run.list") {
  using lpd::daemon::FinalFacts;
  using lpd::daemon::run_result;
  FinalFacts facts;
  facts.exit_code = 0;
  CHECK(run_result(facts, 0) == "passed");
  facts.flaky_crashes = 1;  // passed when re-run: still passed
  CHECK(run_result(facts, 0) == "passed");
  facts.exit_code = 1;
  facts.failed_tests = 1;
  CHECK(run_result(facts, 1) == "failed");
  facts.test_crashes = 1;
  CHECK(run_result(facts, 1) == "crashed");
  FinalFacts killed;
  killed.signal = 9;
  CHECK(run_result(killed, 137) == "killed");
  killed.outside_crashes = 1;
  CHECK(run_result(killed, 137) == "crashed");
  killed.stopped = true;
  CHECK(run_result(killed, 130) == "stopped");
}
