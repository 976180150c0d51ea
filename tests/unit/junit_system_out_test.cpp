// Helper log lines of a failed test as its <system-out> (issue 14, x14py):
// written after every other child of the testcase, escaped like any text,
// kept through the journal's JSON, absent when there are none.
#include <catch2/catch.hpp>

#include "daemon/reports/junit_report.h"
#include "daemon/reports/test_result.h"
#include "tests/unit/text_has.h"

using namespace lpd::daemon;

namespace {

JunitInput pytest_output_input() {
  JunitInput in;
  in.suite_name = "pytest";
  in.runner = "pytest";
  in.tests_reported = true;
  return in;
}


}  // namespace

TEST_CASE("a failed test's helper lines are its system-out, after the failure", "[junit][issue14]") {
  auto in = pytest_output_input();
  TestResult failed;
  failed.nodeid = "t.py::f";
  failed.outcome = "failed";
  failed.phase = "call";
  failed.message = "AssertionError";
  failed.longrepr = "t.py:3: AssertionError";
  failed.system_out = "--- lpd helper db: /s/db.log ---\nserved <q> & \"prêt\"\n";
  TestResult passed;
  passed.nodeid = "t.py::p";
  passed.outcome = "passed";
  passed.phase = "call";
  in.results = {failed, passed};
  const std::string xml = junit_report(in);
  CHECK(has(xml, "<failure message=\"AssertionError\">t.py:3: AssertionError</failure>"
                 "<system-out>--- lpd helper db: /s/db.log ---\nserved &lt;q&gt; &amp; \"prêt\"\n</system-out>"
                 "</testcase>"));
  CHECK(has(xml, "<testcase classname=\"t\" name=\"p\" time=\"0.000\" />"));
}

TEST_CASE("system_out survives the journal's JSON, and is left out when empty", "[junit][issue14]") {
  TestResult r;
  r.nodeid = "t.py::f";
  r.outcome = "failed";
  r.system_out = "helper line\n";
  CHECK(TestResult::from_json(r.to_json()).system_out == "helper line\n");
  r.system_out.clear();
  CHECK_FALSE(r.to_json().contains("system_out"));
  CHECK(TestResult::from_json(nlohmann::json{{"system_out", 3}}).system_out.empty());
}

TEST_CASE("a failed command's stderr is its system-err, after system-out, beside what it left running",
          "[junit][issue18]") {
  JunitInput in;
  in.suite_name = "sh";
  in.runner = "none";
  TestResult command;
  command.nodeid = "sh";
  command.outcome = "error";
  command.phase = "call";
  command.message = "exited with code 3";
  command.system_out = "out\n";
  command.system_err = "err <1>\n";
  in.results = {command};
  std::string xml = junit_report(in);
  CHECK(has(xml, "<system-out>out\n</system-out><system-err>err &lt;1&gt;\n</system-err></testcase>"));
  // Processes it left running (h14left) and its stderr share the one element.
  in.system_err["sh"] = "left running: pid 7";
  xml = junit_report(in);
  CHECK(has(xml, "<system-err>left running: pid 7\nerr &lt;1&gt;\n</system-err>"));
  // Through the journal's JSON, and absent when empty.
  CHECK(TestResult::from_json(command.to_json()).system_err == "err <1>\n");
  command.system_err.clear();
  CHECK_FALSE(command.to_json().contains("system_err"));
}
