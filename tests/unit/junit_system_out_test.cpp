// Helper log lines of a failed test as its <system-out> (issue 14, x14py):
// written after every other child of the testcase, escaped like any text,
// kept through the journal's JSON, absent when there are none.
#include <catch2/catch.hpp>

#include "daemon/reports/junit_report.h"
#include "daemon/reports/test_result.h"

using namespace lpd::daemon;

namespace {

JunitInput pytest_input() {
  JunitInput in;
  in.suite_name = "pytest";
  in.runner = "pytest";
  in.tests_reported = true;
  return in;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a failed test's helper lines are its system-out, after the failure", "[junit][issue14]") {
  auto in = pytest_input();
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
