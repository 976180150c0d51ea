// The JUnit input of a supervised job (piece "junit", issue 12).
#include <catch2/catch.hpp>

#include "daemon/jobs/junit_of_job.h"
#include "tests/unit/call_result.h"
#include "tests/unit/text_has.h"

using namespace lpd::daemon;

TEST_CASE("a job's JUnit input: suite name, times, never-run reason", "[junit]") {
  Job job;
  job.spec.argv = {"/usr/bin/python3", "-m", "pytest", "tests"};
  job.spec.runner = Runner::kPytest;
  job.created_at = 100;
  job.ended_at = 160;
  job.tests_reported = true;
  job.stop_requested = true;
  job.state = JobState::kTerminating;
  auto in = junit_input_of(job, {call_result("t.py::a", "passed")}, {}, {"t.py::a", "t.py::b"}, "host1", 999);
  CHECK(in.suite_name == "pytest");
  CHECK(in.runner == "pytest");
  CHECK(in.hostname == "host1");
  CHECK(in.ended_at - in.started_at == 60);
  CHECK(in.collected.size() == 2);
  CHECK(in.not_run_reason == "not run: the run was stopped");
  CHECK(in.tests_reported);

  job.spec.name = "nightly";
  job.ended_at = 0;  // still running: the report is as of now
  job.state = JobState::kCollected;  // --collect-only runs no test on purpose
  in = junit_input_of(job, {}, {}, {"t.py::a"}, "host1", 130);
  CHECK(in.suite_name == "nightly");
  CHECK(in.ended_at == 130);
  CHECK(in.collected.empty());

  Job make;
  make.spec.argv = {"make", "check"};
  auto command = call_result("make", "error", 1, "exited with code 2");
  command.worker_id = "command";
  in = junit_input_of(make, {command}, {}, {}, "h", 1);
  CHECK(in.suite_name == "make");
  CHECK_FALSE(in.tests_reported);
  CHECK(has(junit_report(in), "<testcase classname=\"make\" name=\"make\""));
}

TEST_CASE("a run's results are lent to its JUnit input and given back whole", "[junit]") {
  Job job;
  job.spec.argv = {"pytest"};
  job.tests_reported = true;
  std::vector<TestResult> results = {call_result("t.py::a", "passed"), call_result("t.py::b", "failed")};
  Crash boom;
  boom.nodeid = "t.py::c";
  std::vector<Crash> crashes = {boom};
  std::vector<std::string> collected = {"t.py::a", "t.py::b", "t.py::c", "t.py::d"};

  auto in = junit_input_of(job, std::move(results), std::move(crashes), std::move(collected), "h", 1);
  REQUIRE(in.results.size() == 2);
  REQUIRE(in.crashes.size() == 1);
  REQUIRE(in.collected.size() == 4);
  CHECK(has(junit_report(in), "not run"));  // t.py::d never ran
  lend_back(in, results, crashes, collected);
  REQUIRE(results.size() == 2);
  CHECK(results[1].nodeid == "t.py::b");
  REQUIRE(crashes.size() == 1);
  CHECK(crashes[0].nodeid == "t.py::c");
  CHECK(collected == std::vector<std::string>{"t.py::a", "t.py::b", "t.py::c", "t.py::d"});

  // --collect-only: the collected nodeids are not taken, so they stay.
  job.spec.argv = {"pytest", "--collect-only"};
  in = junit_input_of(job, std::move(results), std::move(crashes), std::move(collected), "h", 1);
  CHECK(in.collected.empty());
  CHECK(collected.size() == 4);
  lend_back(in, results, crashes, collected);
  CHECK(results.size() == 2);
  CHECK(crashes.size() == 1);
  CHECK(collected.size() == 4);
}
