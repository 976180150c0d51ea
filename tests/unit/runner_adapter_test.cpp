// Runner adapters (daemon/jobs/runner_adapter.h): which runner a command
// is, and how each leaves tests out or runs one alone.
#include <catch2/catch.hpp>

#include "daemon/jobs/runner_adapter.h"

using namespace lpd::daemon;
using V = std::vector<std::string>;

TEST_CASE("pytest is recognised from argv, behind environment wrappers") {
  for (const V& argv : {V{"pytest", "-x"}, V{"/usr/bin/pytest"}, V{"py.test"}, V{"pytest-3", "tests"},
                        V{"python", "-m", "pytest"}, V{"/usr/bin/python3", "-m", "pytest", "-n", "2"},
                        V{"python3.11", "-X", "dev", "-m", "pytest"}, V{"python3", "-mpytest"},
                        V{"env", "A=1", "pytest"}, V{"/usr/bin/env", "-u", "X", "B=2", "python3", "-m", "pytest"},
                        V{"uv", "run", "pytest"}, V{"poetry", "run", "python", "-m", "pytest"}}) {
    INFO(argv.front() << " ... " << argv.back());
    CHECK(detect_runner(argv) == Runner::kPytest);
  }
  for (const V& argv : {V{"python3", "script.py", "-m", "pytest"}, V{"python3", "-m", "unittest"}, V{"make", "test"},
                        V{"sh", "-c", "pytest"}, V{"env"}, V{"pythonista"}}) {
    INFO(argv.front());
    CHECK(detect_runner(argv) == Runner::kNone);
  }
}

TEST_CASE("GoogleTest by its own flags; Catch2 and native shims only by name") {
  CHECK(detect_runner({"./unit", "--gtest_filter=A.*"}) == Runner::kGtest);
  CHECK(detect_runner({"./unit", "--gtest_repeat=2"}) == Runner::kGtest);
  CHECK(detect_runner({"./unit"}) == Runner::kNone);
  CHECK(detect_runner({"./unit"}, Runner::kCatch2) == Runner::kCatch2);
  CHECK(detect_runner({"pytest"}, Runner::kNative) == Runner::kNative);  // --runner wins
  CHECK(runner_from_name("googletest") == Runner::kGtest);
  CHECK(runner_from_name("catch2") == Runner::kCatch2);
  CHECK_FALSE(runner_from_name("none"));
  CHECK_FALSE(runner_from_name("jest"));
}

TEST_CASE("pytest: --deselect per crashed test; argv otherwise as given") {
  CHECK(attempt_argv(Runner::kPytest, {"pytest", "-q", "tests"}, {}, {{"t.py::a", "t.py::b[1]"}, ""}) ==
        V{"pytest", "-q", "tests", "--deselect", "t.py::a", "--deselect", "t.py::b[1]"});
  // Alone: left to the shim (LPD_ONLY_NODEIDS_FILE); never a flag it does not know.
  CHECK(attempt_argv(Runner::kPytest, {"pytest", "tests"}, {}, {{}, "t.py::a"}) == V{"pytest", "tests"});
}

TEST_CASE("pytest: --deselect arguments stop at kMaxDeselectArgvBytes; the shim deselects the rest") {
  // 70 crashed tests of 16 KB nodeids: 1.1 MB of arguments if all went in.
  std::vector<std::string> crashed;
  for (int i = 0; i < 70; ++i) crashed.push_back("t.py::test[" + std::to_string(100 + i) + std::string(16000, 'x') + "]");
  const V argv = attempt_argv(Runner::kPytest, {"pytest", "-n", "2"}, {}, {crashed, ""});
  std::size_t added = 0;
  for (std::size_t i = 3; i < argv.size(); ++i) added += argv[i].size() + 1;
  CHECK(added <= kMaxDeselectArgvBytes);
  REQUIRE(argv.size() > 3);
  // The first ones, in order, in pairs; none cut in the middle.
  const std::size_t pairs = (argv.size() - 3) / 2;
  CHECK(argv.size() == 3 + 2 * pairs);
  CHECK(pairs == kMaxDeselectArgvBytes / (crashed[0].size() + sizeof("--deselect") + 1));
  for (std::size_t i = 0; i < pairs; ++i) {
    CHECK(argv[3 + 2 * i] == "--deselect");
    CHECK(argv[4 + 2 * i] == crashed[i]);
  }
}

TEST_CASE("GoogleTest: crashed tests join the filter's negative patterns") {
  CHECK(gtest_filter_without("", {"A.b"}) == "*-A.b");
  CHECK(gtest_filter_without("*", {"A.b", "C.d"}) == "*-A.b:C.d");
  CHECK(gtest_filter_without("Sample.*:Crash.*", {"Crash.x"}) == "Sample.*:Crash.*-Crash.x");
  CHECK(gtest_filter_without("Sample.*-Sample.Slow", {"Sample.x"}) == "Sample.*-Sample.Slow:Sample.x");
  CHECK(gtest_filter_without("-Slow.*", {"A.b"}) == "*-Slow.*:A.b");
  // The last --gtest_filter of argv is GoogleTest's; only one is passed on.
  CHECK(attempt_argv(Runner::kGtest, {"./t", "--gtest_filter=A.*", "--gtest_color=no", "--gtest_filter=B.*"}, {},
                     {{"B.x"}, ""}) == V{"./t", "--gtest_color=no", "--gtest_filter=B.*-B.x"});
  // $GTEST_FILTER when argv has none.
  CHECK(attempt_argv(Runner::kGtest, {"./t"}, {"GTEST_FILTER=Fast.*"}, {{"Fast.y"}, ""}) ==
        V{"./t", "--gtest_filter=Fast.*-Fast.y"});
  CHECK(attempt_argv(Runner::kGtest, {"./t", "--gtest_filter=A.*"}, {}, {{}, "Inst/P.T/3"}) ==
        V{"./t", "--gtest_filter=Inst/P.T/3"});
  CHECK(attempt_argv(Runner::kGtest, {"./t", "--gtest_filter=A.*"}, {}, {}) == V{"./t", "--gtest_filter=A.*"});
}

TEST_CASE("Catch2: an exclusion in each OR-ed filter of the command's spec") {
  CHECK(catch2_quoted_name("plain") == "\"plain\"");
  CHECK(catch2_quoted_name("a, [b] \"c\" *") == "\"a\\, \\[b\\] \\\"c\\\" \\*\"");
  // No spec: exclusions alone (every other test runs).
  CHECK(attempt_argv(Runner::kCatch2, {"./c", "-r", "compact"}, {}, {{"X", "Y"}, ""}) ==
        V{"./c", "-r", "compact", "~\"X\"", "~\"Y\""});
  // "A,B" is A or B: each side loses X.
  CHECK(attempt_argv(Runner::kCatch2, {"./c", "A,[tag]", "-s"}, {}, {{"X"}, ""}) ==
        V{"./c", "-s", "A", "~\"X\"", ",", "[tag]", "~\"X\""});
  // Escaped commas are names, not ORs; option values are not specs.
  CHECK(attempt_argv(Runner::kCatch2, {"./c", "-o", "out.xml", "a\\,b"}, {}, {{"X"}, ""}) ==
        V{"./c", "-o", "out.xml", "a\\,b", "~\"X\""});
  CHECK(attempt_argv(Runner::kCatch2, {"./c", "A"}, {}, {{}, "Crash test"}) == V{"./c", "\"Crash test\""});
}

TEST_CASE("native and unknown commands: argv untouched") {
  CHECK(attempt_argv(Runner::kNative, {"./n", "x"}, {}, {{"a"}, ""}) == V{"./n", "x"});
  CHECK(attempt_argv(Runner::kNone, {"make", "check"}, {}, {{"a"}, ""}) == V{"make", "check"});
  CHECK(command_test_name({"/usr/bin/make", "check"}) == "make");
  CHECK(command_test_name({"env", "A=1", "./build/t"}) == "t");
  CHECK(command_test_name({}) == "command");
}
