// JUnit report rules (piece "junit", issue 12): pytest's names and escaping,
// latest attempt wins, crashes, interrupted, never-run, flaky, session
// errors and a command without tests.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "daemon/reports/junit_names.h"
#include "daemon/crashes/crash_rules.h"
#include "daemon/reports/junit_report.h"
#include "daemon/reports/xml_text.h"
#include "tests/unit/call_result.h"
#include "tests/unit/text_has.h"

using namespace lpd::daemon;

namespace {

Crash crash_in(std::string nodeid, int attempt, std::string reason = "killed by SIGSEGV") {
  Crash c;
  c.nodeid = std::move(nodeid);
  c.where = c.nodeid.empty() ? "session" : "test";
  c.attempt = attempt;
  c.signal = 11;
  c.reason = std::move(reason);
  c.traceback = "Fatal Python error: Segmentation fault\n  File \"t.py\", line 3";
  return c;
}

JunitInput pytest_report_input() {
  JunitInput in;
  in.suite_name = "pytest";
  in.runner = "pytest";
  in.hostname = "ci1";
  in.started_at = 1000;
  in.ended_at = 1012.5;
  return in;
}

/// The text of the <testcase> whose name attribute is `name`.
std::string testcase(const std::string& xml, const std::string& name) {
  const auto at = xml.find("name=\"" + name + "\"");
  if (at == std::string::npos) return "";
  const auto start = xml.rfind("<testcase", at);
  auto end = xml.find("\n    <testcase", at);
  if (end == std::string::npos) end = xml.find("\n  </testsuite>", at);
  return xml.substr(start, end - start);
}


}  // namespace

TEST_CASE("visible_xml_chars shows what pytest's bin_xml_escape shows", "[junit]") {
  CHECK(visible_xml_chars("a\x07" "b\x1b[0m") == "a#x07b#x1B[0m");
  CHECK(visible_xml_chars("tab\tnl\ncr\r") == "tab\tnl\ncr\r");
  CHECK(visible_xml_chars("del\x7f") == "del\x7f");          // pytest keeps U+007F
  CHECK(visible_xml_chars("\xc3\xa9 \xc3\xbc") == "\xc3\xa9 \xc3\xbc");  // é ü kept
  CHECK(visible_xml_chars("\xf0\x9f\x98\x80") == "#x1F600");  // beyond U+FFFF: pytest shows it
  CHECK(visible_xml_chars("\xef\xbf\xbe") == "#xFFFE");
  CHECK(visible_xml_chars("bad\xff" "byte\xc3") == "bad#xFFbyte#xC3");  // not UTF-8
  CHECK(visible_xml_chars("\xed\xa0\x80") == "#xED#xA0#x80");  // an encoded surrogate is not UTF-8
}

TEST_CASE("attributes keep newlines as references, text keeps them as they are", "[junit]") {
  CHECK(xml_attribute("a\nb\r\tc <&> \"q\" 'a'") == "a&#10;b&#13;&#09;c &lt;&amp;&gt; &quot;q&quot; 'a'");
  CHECK(xml_text("a\nb <&> \"q\"") == "a\nb &lt;&amp;&gt; \"q\"");
  CHECK(xml_attribute("x\x01y") == "x#x01y");
}

namespace {

/// pytest's mangle_test_address written as pytest writes it (split the path
/// at "::", dot the file, join all but the last): what the one-pass
/// pytest_testcase_name must equal, whatever the nodeid.
lpd::daemon::TestcaseName mangle_as_pytest(std::string_view nodeid) {
  const auto bracket = nodeid.find('[');
  const std::string_view path = nodeid.substr(0, bracket);
  std::vector<std::string> names;
  for (std::size_t from = 0;;) {
    const auto at = path.find("::", from);
    names.emplace_back(path.substr(from, at == std::string_view::npos ? std::string_view::npos : at - from));
    if (at == std::string_view::npos) break;
    from = at + 2;
  }
  for (char& c : names.front())
    if (c == '/') c = '.';
  if (names.front().size() >= 3 && names.front().ends_with(".py")) names.front().resize(names.front().size() - 3);
  if (bracket != std::string_view::npos) names.back() += nodeid.substr(bracket);
  lpd::daemon::TestcaseName out;
  out.name = names.back();
  for (std::size_t i = 0; i + 1 < names.size(); ++i) out.classname += (i ? "." : "") + names[i];
  return out;
}

}  // namespace

TEST_CASE("testcase names equal pytest's split-and-join for any nodeid", "[junit]") {
  // Every string of up to 7 characters from these pieces, and some longer.
  const std::vector<std::string> pieces = {":", "::", "/", ".py", "a", "[", "]", "b.py", "x/"};
  std::vector<std::string> nodeids = {"", "::", ":::", "::::", "a::::b", "a:::b", "a.py::", "::a", "p.py::C::[x::y]",
                                      "d/e.py::C::D::t[1]", ".py", "a/.py::t"};
  for (const auto& a : pieces)
    for (const auto& b : pieces)
      for (const auto& c : pieces)
        for (const auto& d : pieces) nodeids.push_back(a + b + c + d);
  for (const auto& nodeid : nodeids) {
    INFO(nodeid);
    const auto mine = pytest_testcase_name(nodeid);
    const auto theirs = mangle_as_pytest(nodeid);
    CHECK(mine.classname == theirs.classname);
    CHECK(mine.name == theirs.name);
  }
}

TEST_CASE("testcase names follow pytest's mangle_test_address", "[junit]") {
  auto n = pytest_testcase_name("tests/sub/test_x.py::TestC::TestD::test_f[a::b/c.py]");
  CHECK(n.classname == "tests.sub.test_x.TestC.TestD");
  CHECK(n.name == "test_f[a::b/c.py]");
  n = pytest_testcase_name("test_x.py::test_g");
  CHECK(n.classname == "test_x");
  CHECK(n.name == "test_g");
  n = pytest_testcase_name("tests/test_bad.py");  // a collector
  CHECK(n.classname == "");
  CHECK(n.name == "tests.test_bad");
  n = pytest_testcase_name("a.py.d/test_y.py::test_h");  // only the last ".py" goes
  CHECK(n.classname == "a.py.d.test_y");

  n = testcase_name_of("Prefix/Suite.Test/0", "gtest", "AllTests");
  CHECK(n.classname == "Prefix/Suite");
  CHECK(n.name == "Test/0");
  n = testcase_name_of("vector grows. twice", "catch2", "tests_bin");
  CHECK(n.classname == "tests_bin.global");
  CHECK(n.name == "vector grows. twice");
  n = testcase_name_of("lonely", "", "x");
  CHECK(n.classname == "");
  CHECK(n.name == "lonely");
}

TEST_CASE("the suite is named for its runner", "[junit]") {
  CHECK(runner_of({"pytest", "-q"}) == "pytest");
  CHECK(runner_of({"/usr/bin/python3", "-X", "dev", "-m", "pytest"}) == "pytest");
  CHECK(runner_of({"python3", "script.py", "-m", "pytest"}) == "");
  CHECK(runner_of({"make", "test"}) == "");
  CHECK(suite_name_for({"python3", "-m", "pytest"}, "pytest") == "pytest");
  CHECK(suite_name_for({"./build/sample_gtest"}, "gtest") == "AllTests");
  CHECK(suite_name_for({"/usr/bin/make", "check"}, "") == "make");
}

TEST_CASE("the suite carries host, ISO timestamp and wall-clock time", "[junit]") {
  auto in = pytest_report_input();
  in.results = {call_result("t.py::a", "passed"), call_result("t.py::b", "passed")};
  in.results[0].duration = 1;
  in.results[1].duration = 1;
  const std::string xml = junit_report(in);
  CHECK(has(xml, "<testsuite name=\"pytest\" errors=\"0\" failures=\"0\" skipped=\"0\" tests=\"2\" time=\"12.500\" "
                 "timestamp=\"" + iso_timestamp(1000) + "\" hostname=\"ci1\">"));
  CHECK(iso_timestamp(1000).size() == 19);                // no fraction when it is zero
  CHECK(iso_timestamp(1000.25).substr(19) == ".250000");  // microseconds, as isoformat()
  CHECK(has(xml, "<testcase classname=\"t\" name=\"a\" time=\"1.000\" />"));
}

TEST_CASE("failure, error and skip text are pytest's", "[junit]") {
  auto in = pytest_report_input();
  auto failed = call_result("t.py::f", "failed", 1, "AssertionError: one\ntwo");
  failed.longrepr = "def test_f():\n>   assert False, 'one\\ntwo'\nE   AssertionError: one\n\nt.py:3: AssertionError";
  auto setup = call_result("t.py::s", "error", 1, "RuntimeError: boom");
  setup.phase = "setup";
  setup.longrepr = "conftest.py:5: RuntimeError";
  auto teardown = call_result("t.py::td", "error", 1, "ValueError: x");
  teardown.phase = "teardown";
  auto skipped = call_result("t.py::k", "skipped", 1, "not on linux");
  skipped.phase = "setup";
  skipped.longrepr = "/src/t.py:9: not on linux";
  auto xfail = call_result("t.py::x", "skipped", 1, "known bug");
  xfail.xfail_reason = "known bug";
  in.results = {failed, setup, teardown, skipped, xfail};
  const std::string xml = junit_report(in);
  CHECK(testcase(xml, "f") ==
        "<testcase classname=\"t\" name=\"f\" time=\"0.000\"><failure message=\"AssertionError: one&#10;two\">"
        "def test_f():\n&gt;   assert False, 'one\\ntwo'\nE   AssertionError: one\n\nt.py:3: AssertionError"
        "</failure></testcase>");
  CHECK(has(testcase(xml, "s"), "<error message=\"failed on setup with &quot;RuntimeError: boom&quot;\">"
                                "conftest.py:5: RuntimeError</error>"));
  CHECK(has(testcase(xml, "td"), "message=\"failed on teardown with &quot;ValueError: x&quot;\""));
  CHECK(has(testcase(xml, "k"), "<skipped type=\"pytest.skip\" message=\"not on linux\">/src/t.py:9: not on linux"
                                "</skipped>"));
  CHECK(has(testcase(xml, "x"), "<skipped type=\"pytest.xfail\" message=\"known bug\" />"));
  CHECK(has(xml, "errors=\"2\" failures=\"1\" skipped=\"2\" tests=\"5\""));
}

TEST_CASE("the external failure reason is in the failure text once", "[junit]") {
  auto in = pytest_report_input();
  auto with_section = call_result("t.py::a", "failed", 1, "boom");
  with_section.longrepr = "E boom\n----- external failure reason (lpd) -----\nticket 44";
  with_section.failure_reason = "ticket 44";
  auto native = call_result("t.py::b", "failed", 1, "boom");
  native.failure_reason = "ticket 45";
  in.results = {with_section, native};
  const std::string xml = junit_report(in);
  CHECK(testcase(xml, "a").find("ticket 44") == testcase(xml, "a").rfind("ticket 44"));
  CHECK(has(testcase(xml, "b"), ">boom\nexternal failure reason (lpd): ticket 45</failure>"));
}

TEST_CASE("shim-given names and runner file/line", "[junit]") {
  JunitInput in;
  in.suite_name = "AllTests";
  in.runner = "gtest";
  auto r = call_result("Suite.Fails", "failed", 1, "Expected: 1");
  r.file = "sample_test.cpp";
  r.line = 42;
  in.results = {r};
  auto py = pytest_report_input();
  auto named = call_result("t.py::x", "passed");
  named.classname = "prefix.t";
  named.name = "x";
  named.file = "t.py";
  named.line = 3;
  py.results = {named};
  CHECK(has(junit_report(in), "<testcase classname=\"Suite\" name=\"Fails\" file=\"sample_test.cpp\" line=\"42\""));
  CHECK(has(junit_report(py), "<testcase classname=\"prefix.t\" name=\"x\" time="));  // xunit2: no file/line
}

TEST_CASE("the latest attempt of each test wins", "[junit]") {
  auto in = pytest_report_input();
  in.results = {call_result("t.py::a", "failed", 1, "first"), call_result("t.py::b", "passed", 1),
                call_result("t.py::a", "passed", 2)};
  in.crashes = {crash_in("t.py::c", 1)};
  in.results.push_back(call_result("t.py::c", "failed", 2, "after the crash"));
  const std::string xml = junit_report(in);
  CHECK(testcase(xml, "a") == "<testcase classname=\"t\" name=\"a\" time=\"0.000\" />");
  CHECK(has(testcase(xml, "c"), "<failure message=\"after the crash\">"));
  CHECK(has(testcase(xml, "c"), "<rerunError message=\"killed by SIGSEGV (attempt 1)\" type=\"crash\">"
                                "<stackTrace>Fatal Python error"));
  CHECK(has(xml, "tests=\"3\""));
}

TEST_CASE("a crash is an error with the signal and the traceback", "[junit]") {
  auto in = pytest_report_input();
  in.results = {call_result("t.py::a", "passed")};
  in.crashes = {crash_in("t.py::boom", 1, "killed by SIGSEGV while running t.py::boom (call)")};
  const std::string xml = junit_report(in);
  CHECK(has(testcase(xml, "boom"), "<error type=\"crash\" message=\"killed by SIGSEGV while running t.py::boom "
                                   "(call)\">Fatal Python error: Segmentation fault\n  File \"t.py\", line 3</error>"));
  CHECK(has(xml, "errors=\"1\""));
}

TEST_CASE("a crash that passed when run again is a flaky crash", "[junit]") {
  auto in = pytest_report_input();
  in.crashes = {crash_in("t.py::flaky", 1), crash_in("t.py::rerunfailures", 1)};
  auto rerun = call_result("t.py::rerunfailures", "passed", 1);
  rerun.reruns = 1;  // pytest-rerunfailures ran it again in the same attempt
  in.results = {call_result("t.py::flaky", "passed", 2), rerun};
  const std::string xml = junit_report(in);
  CHECK(testcase(xml, "flaky") ==
        "<testcase classname=\"t\" name=\"flaky\" time=\"0.000\"><flakyError message=\"killed by SIGSEGV (attempt 1)\""
        " type=\"crash\"><stackTrace>Fatal Python error: Segmentation fault\n  File \"t.py\", line 3</stackTrace>"
        "</flakyError></testcase>");
  CHECK(has(testcase(xml, "rerunfailures"), "<flakyError"));
  CHECK(has(xml, "errors=\"0\" failures=\"0\" skipped=\"0\" tests=\"2\""));

  // Marked flaky by lpd (CrashStore::mark_flaky) is enough.
  auto marked = pytest_report_input();
  marked.crashes = {crash_in("t.py::m", 1)};
  marked.crashes[0].flaky = true;
  marked.results = {call_result("t.py::m", "passed", 1)};
  CHECK(has(testcase(junit_report(marked), "m"), "<flakyError"));
}

TEST_CASE("an interrupted test is an error saying so, with its phase", "[junit]") {
  auto in = pytest_report_input();
  auto by_shim = call_result("t.py::a", "interrupted", 1, "KeyboardInterrupt");
  by_shim.longrepr = "t.py:4: KeyboardInterrupt";
  auto by_lpd = call_result("t.py::b", "interrupted", 1, "interrupted: the run was stopped");
  by_lpd.phase = "teardown";
  in.results = {by_shim, by_lpd};
  const std::string xml = junit_report(in);
  CHECK(has(testcase(xml, "a"), "<error type=\"interrupted\" message=\"interrupted during call: KeyboardInterrupt\">"
                                "t.py:4: KeyboardInterrupt</error>"));
  CHECK(has(testcase(xml, "b"), "message=\"interrupted during teardown: the run was stopped\""));
  CHECK(has(xml, "errors=\"2\""));
}

TEST_CASE("collected tests that never ran are skipped with the reason", "[junit]") {
  auto in = pytest_report_input();
  in.results = {call_result("t.py::a", "passed")};
  in.crashes = {crash_in("t.py::b", 1)};
  in.collected = {"t.py::a", "t.py::b", "t.py::c", "t.py::c", "t.py::d[1]"};
  Crash c = crash_in("t.py::b", 1, "killed by SIGSEGV while running t.py::b (call)");
  in.not_run_reason = never_run_reason(false, 139, std::nullopt, {c});
  const std::string xml = junit_report(in);
  CHECK(testcase(xml, "c") == "<testcase classname=\"t\" name=\"c\" time=\"0.000\"><skipped type=\"lpd.notrun\" "
                              "message=\"not run: a test process crashed (killed by SIGSEGV while running t.py::b "
                              "(call))\" /></testcase>");
  CHECK(has(testcase(xml, "d[1]"), "not run: "));
  CHECK(has(xml, "errors=\"1\" failures=\"0\" skipped=\"2\" tests=\"4\""));

  CHECK(never_run_reason(true, 1, std::nullopt, {}) == "not run: the run was stopped");
  CHECK(never_run_reason(false, std::nullopt, 9, {}) == "not run: the command was killed by SIGKILL");
  CHECK(never_run_reason(false, 2, std::nullopt, {}) == "not run: the command exited with code 2 before running them");

  // A process that died while lpd was away took its unsent results with it:
  // a test without a result may have run, and is not said to have not.
  const Crash away = unattributed_command_crash("r", 42, 11, 1, 0, 5.0);
  CHECK(results_lost_with(away));
  CHECK_FALSE(results_lost_with(c));
  CHECK(never_run_reason(false, std::nullopt, 11, {c, away}) ==
        "result unknown: a test process crashed while lpd was restarting (killed by SIGSEGV while lpd was "
        "restarting: which test it was running is not known), and the results it had not sent yet were lost with "
        "it: this test may have run");
}

TEST_CASE("failures outside tests are testcases named for the phase", "[junit]") {
  auto in = pytest_report_input();
  auto collection = call_result("tests/test_bad.py", "error", 1, "ImportError: no module x");
  collection.phase = "collection";
  collection.longrepr = "ImportError while importing test module";
  auto again = collection;  // the same error again in a retry: one testcase
  again.attempt = 2;
  auto finish = call_result("", "error", 1, "RuntimeError: hook");
  finish.phase = "sessionfinish";
  finish.longrepr = "Traceback ...";
  in.results = {collection, call_result("t.py::a", "passed"), again, finish};
  Crash at_exit = crash_in("", 1, "killed by SIGSEGV outside any test");
  at_exit.phase = "exit";
  in.crashes = {at_exit};
  const std::string xml = junit_report(in);
  CHECK(testcase(xml, "tests.test_bad") ==
        "<testcase classname=\"\" name=\"tests.test_bad\" time=\"0.000\"><error message=\"collection failure\">"
        "ImportError while importing test module</error></testcase>");
  CHECK(has(testcase(xml, "sessionfinish"), "classname=\"pytest\""));
  CHECK(has(testcase(xml, "sessionfinish"), "<error message=\"sessionfinish failure: RuntimeError: hook\">"
                                            "Traceback ...</error>"));
  CHECK(has(testcase(xml, "exit crash"), "<error type=\"crash\" message=\"killed by SIGSEGV outside any test\">"));
  CHECK(has(xml, "errors=\"3\" failures=\"0\" skipped=\"0\" tests=\"4\""));
  CHECK(xml.find("tests.test_bad") < xml.find("name=\"a\""));  // collection errors come first, as in pytest
}

TEST_CASE("a command that reported no tests is one testcase with its exit", "[junit]") {
  JunitInput in;
  in.suite_name = "make";
  in.tests_reported = false;
  in.results = {call_result("make", "error", 1, "exited with code 2")};
  std::string xml = junit_report(in);
  CHECK(has(xml, "<testcase classname=\"make\" name=\"make\" time=\"0.000\"><error message=\"exited with code 2\">"
                 "exited with code 2</error></testcase>"));
  CHECK(has(xml, "errors=\"1\" failures=\"0\" skipped=\"0\" tests=\"1\""));

  in.suite_name = "sh.x";
  in.results = {call_result("sh.x", "error", 1, "killed by SIGSEGV")};
  Crash c = crash_in("sh.x", 1, "killed by SIGSEGV");
  c.where = "command";
  in.crashes = {c};
  xml = junit_report(in);
  CHECK(has(xml, "<testcase classname=\"sh.x\" name=\"sh.x\" time=\"0.000\"><error type=\"crash\" "
                 "message=\"killed by SIGSEGV\">Fatal Python error"));
  CHECK(has(xml, "tests=\"1\""));

  in.results = {call_result("sh.x", "passed")};
  in.crashes.clear();
  CHECK(has(junit_report(in), "<testcase classname=\"sh.x\" name=\"sh.x\" time=\"0.000\" />"));
}

TEST_CASE("truncated_text cuts at a character and says so", "[junit]") {
  const std::string text = std::string(10, 'a') + "\xc3\xa9" + std::string(10, 'b');
  const std::string cut = truncated_text(text, 11);
  CHECK(cut.rfind(std::string(10, 'a') + "\n[lpd: cut here, 12 more bytes not kept]", 0) == 0);
  CHECK(truncated_text("short", 10) == "short");
}

TEST_CASE("testcase times are written as pytest's \"%.3f\" writes them, halfway cases included", "[junit]") {
  const std::vector<double> durations = {0, 0.0005, 0.0015, 0.0025, 1.0005, 2.675, 123.4565, 1e-9, 0.9995, 86400.123456};
  auto in = pytest_report_input();
  for (std::size_t i = 0; i < durations.size(); ++i) {
    auto r = call_result("t.py::test_" + std::to_string(i), "passed");
    r.duration = durations[i];
    in.results.push_back(r);
  }
  const std::string xml = junit_report(in);
  for (std::size_t i = 0; i < durations.size(); ++i) {
    char printf_text[64];
    std::snprintf(printf_text, sizeof(printf_text), "%.3f", durations[i]);
    INFO("duration " << durations[i]);
    CHECK(testcase(xml, "test_" + std::to_string(i)).find(std::string("time=\"") + printf_text + "\"") !=
          std::string::npos);
  }
}

TEST_CASE("text with nothing to escape is written as it is; anything else is escaped", "[junit]") {
  CHECK(xml_attribute("t.py::test_a[1-2] (x, y)") == "t.py::test_a[1-2] (x, y)");
  CHECK(xml_text("plain words 123") == "plain words 123");
  CHECK(xml_attribute("a\"b<c>&d\ne") == "a&quot;b&lt;c&gt;&amp;d&#10;e");
  CHECK(xml_text("a\"b<c>&d\ne") == "a\"b&lt;c&gt;&amp;d\ne");
  CHECK(xml_text(std::string("bad \x01 byte")) == "bad #x01 byte");
  CHECK(xml_text("caf\xc3\xa9") == "caf\xc3\xa9");
}
