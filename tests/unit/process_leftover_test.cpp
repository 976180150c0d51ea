// Issue 14 (h14left): the test a process left running by a run started in.
#include <catch2/catch.hpp>

#include <string>

#include "daemon/os/leftover_test.h"
#include "daemon/reports/junit_report.h"

using namespace lpd::daemon;
using namespace std::string_literals;

TEST_CASE("PYTEST_CURRENT_TEST is found anywhere in an environ, as getenv finds it") {
  const std::string env = "A=1\0PYTEST_CURRENT_TEST_X=no\0PYTEST_CURRENT_TEST=t.py::a (call)\0B=2\0"s;
  CHECK(environ_value(env, "PYTEST_CURRENT_TEST") == "t.py::a (call)");
  CHECK(environ_value(env, "B") == "2");
  CHECK_FALSE(environ_value(env, "C"));
  CHECK_FALSE(environ_value("XPYTEST_CURRENT_TEST=a\0"s, "PYTEST_CURRENT_TEST"));
  // The first of two, as getenv() returns.
  CHECK(environ_value("K=first\0K=second\0"s, "K") == "first");
  // The last entry without its NUL: whole unless the read was cut there.
  CHECK(environ_value("A=1\0K=tail"s, "K") == "tail");
  CHECK_FALSE(environ_value("A=1\0K=tail"s, "K", /*cut=*/true));
  CHECK(environ_value("K=whole\0A=cut-her"s, "K", true) == "whole");
  CHECK(environ_value("K=\0"s, "K") == "");
  CHECK_FALSE(environ_value("", "K"));
}

TEST_CASE("PYTEST_CURRENT_TEST's value is pytest's 'NODEID (PHASE)' or nothing") {
  auto call = parse_pytest_current_test("tests/test_a.py::test_x (call)");
  REQUIRE(call);
  CHECK(call->nodeid == "tests/test_a.py::test_x");
  CHECK(call->phase == "call");
  CHECK(parse_pytest_current_test("t.py::T::x (setup)")->phase == "setup");
  CHECK(parse_pytest_current_test("t.py::x (teardown)")->phase == "teardown");
  // A nodeid may hold spaces and parentheses itself: the phase is the last one.
  auto odd = parse_pytest_current_test("t.py::x[a (call) b] (teardown)");
  REQUIRE(odd);
  CHECK(odd->nodeid == "t.py::x[a (call) b]");
  CHECK(odd->phase == "teardown");
  for (const char* bad : {"", " (call)", "(call)", "t.py::x", "t.py::x (run)", "t.py::x (call) ", "t.py::x(call)",
                          "t.py::x (CALL)"})
    CHECK_FALSE(parse_pytest_current_test(bad));
  // Bounded like every nodeid lpd takes: 16 KiB.
  CHECK(parse_pytest_current_test(std::string(kMaxLeftoverNodeidBytes, 'x') + " (call)"));
  CHECK_FALSE(parse_pytest_current_test(std::string(kMaxLeftoverNodeidBytes + 1, 'x') + " (call)"));
  // Whatever bytes the process put there come out printable, valid UTF-8.
  CHECK(parse_pytest_current_test("t\xff\n\xc3\xa9\xed\xa0\x80::x (call)"s)->nodeid == "t??\xc3\xa9???::x");
  CHECK(parse_pytest_current_test("a\0b (call)"s)->nodeid == "a?b");
}

TEST_CASE("printable_utf8 keeps characters whole and marks a cut") {
  CHECK(printable_utf8("abc", 10) == "abc");
  CHECK(printable_utf8("abcdef", 3) == "abc...");
  CHECK(printable_utf8("ab\xc3\xa9", 3) == "ab...");  // é is not split
  CHECK(printable_utf8("a\0b"s, 10, ' ') == "a b");
  CHECK(printable_utf8("\xf0\x9f\x98\x80", 4) == "\xf0\x9f\x98\x80");
  CHECK(printable_utf8("\xf4\x90\x80\x80", 10) == "????");  // past U+10FFFF
  CHECK(printable_utf8("\xe0\x80\x80", 10) == "???");      // overlong
}

TEST_CASE("a start time in ticks since boot becomes wall-clock time") {
  // Booted 1000 s ago (boot clock 1000.0 at wall clock 5000.0): a start at
  // 250 ticks of 100 per second is 2.5 s after boot.
  CHECK(start_wall_time(250, 100, 1000.0, 5000.0) == Approx(4002.5));
  CHECK(start_wall_time(250, 0, 1000.0, 5000.0) == 0);
}

namespace {
std::vector<std::string> running_at(const TestSpanBuilder& b, double t, double lag = 0.5) {
  return tests_running_between(b.spans(), t, t + 0.01, lag);
}
}  // namespace

TEST_CASE("by start time: the tests whose span holds the start, allowing for lpd's lateness") {
  TestSpanBuilder b;
  b.started("gw0", "t::a", 100.0);
  b.finished("gw0", "t::a", 110.0);
  b.started("gw0", "t::b", 110.0);
  b.finished("gw0", "t::b", 120.0);
  b.started("gw1", "t::c", 105.0);  // still running (no finish seen)
  using V = std::vector<std::string>;
  CHECK(running_at(b, 102.0) == V{"t::a"});
  CHECK(running_at(b, 106.0) == V{"t::a", "t::c"});   // xdist: either worker
  CHECK(running_at(b, 115.0) == V{"t::c", "t::b"});   // in the order they started
  CHECK(running_at(b, 130.0) == V{"t::c"});
  // A test.start is handled after the test began: up to `lag` earlier counts...
  CHECK(running_at(b, 109.7) == V{"t::a", "t::c", "t::b"});
  // ...but a finish is never handled before the test ended.
  CHECK(running_at(b, 110.5) == V{"t::c", "t::b"});
  CHECK(running_at(b, 99.0) == V{});
  CHECK(running_at(b, 99.6) == V{"t::a"});
}

TEST_CASE("by start time: lost messages and a history that begins mid-test") {
  TestSpanBuilder b;
  b.finished("gw0", "t::old", 50.0);  // its start is older than the history
  b.started("gw0", "t::a", 60.0);     // its finish was lost...
  b.started("gw0", "t::b", 70.0);     // ...the next start on the worker ends it
  b.finished("gw0", "t::b", 80.0);
  b.finished("gw0", "t::b", 90.0);    // a repeated finish changes nothing
  using V = std::vector<std::string>;
  CHECK(running_at(b, 10.0) == V{"t::old"});
  CHECK(running_at(b, 65.0) == V{"t::a"});
  CHECK(running_at(b, 85.0) == V{});
  // The same nodeid twice (a rerun) is listed once.
  b.started("gw0", "t::b", 100.0);
  CHECK(tests_running_between(b.spans(), 78.0, 78.01, 30.0).size() == 1);  // both runs of t::b
  CHECK(running_at(b, 78.0, 30.0) == V{"t::b"});
}

TEST_CASE("a leftover's line and JUnit text say how its test is known") {
  LeftProcess l;
  l.pid = 42;
  l.argv = "sleep 1000";
  l.attempt = 2;
  CHECK(l.line() == "pid 42: sleep 1000 (no test known)");
  l.unknown = "started outside any test, by its start time";
  CHECK(l.line() == "pid 42: sleep 1000 (no test known: started outside any test, by its start time)");
  l.tests = {"t.py::x"};
  l.phase = "call";
  l.known_by = LeftProcess::kByEnvironment;
  CHECK(l.line() == "pid 42: sleep 1000 (started during t.py::x, call)");
  CHECK(l.junit_line() ==
        "lpd: this test left a process running: pid 42 (sleep 1000) started during its call phase (its "
        "PYTEST_CURRENT_TEST said so) was still running when the command of attempt 2 ended; lpd killed it.\n");

  LeftProcess t;
  t.pid = 7;
  t.argv = "x";
  attribute_by_start_time(t, {"a", "b"}, 0.5);
  CHECK(t.line() == "pid 7: x (started during one of: a; b, by its start time)");
  attribute_by_start_time(t, {"a"}, 0.5);
  CHECK(t.line() == "pid 7: x (started during a, by its start time)");
  CHECK(t.junit_line().find("started while this test was running (by its start time)") != std::string::npos);
  attribute_by_start_time(t, {"a", "b", "c", "d"}, 0.5);
  CHECK(t.line() == "pid 7: x (no test known: 4 tests ran within 0.5 s of its start)");
  attribute_by_start_time(t, {}, 0.5);
  CHECK(t.line() == "pid 7: x (no test known: started outside any test, by its start time)");
  // The line shows a long nodeid cut; the record keeps it whole.
  t.tests = {std::string(20000, 'n')};
  t.known_by = LeftProcess::kByStartTime;
  CHECK(t.line().size() < 700);
}

TEST_CASE("a test that left a process running carries it in <system-err>, its outcome unchanged") {
  JunitInput in;
  in.suite_name = "pytest";
  in.runner = "pytest";
  TestResult passed;
  passed.nodeid = "t.py::leaks";
  passed.outcome = "passed";
  passed.phase = "call";
  TestResult other = passed;
  other.nodeid = "t.py::clean";
  in.results = {passed, other};
  in.system_err["t.py::leaks"] = "lpd: this test left a process running: pid 9 <x>\n";
  const std::string xml = junit_report(in);
  CHECK(xml.find("<testcase classname=\"t\" name=\"leaks\" time=\"0.000\"><system-err>lpd: this test left a process "
                 "running: pid 9 &lt;x&gt;\n</system-err></testcase>") != std::string::npos);
  CHECK(xml.find("name=\"clean\" time=\"0.000\" />") != std::string::npos);
  CHECK(xml.find("failures=\"0\"") != std::string::npos);
  CHECK(xml.find("errors=\"0\"") != std::string::npos);
}
