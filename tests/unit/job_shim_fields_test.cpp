// The shims' messages decoded with no I/O (daemon/jobs/shim_fields.h) and
// run.start's spec (daemon/jobs/job_ops.h): defaults, what is refused, and
// the wording protocol/README.md documents.
#include <catch2/catch.hpp>

#include "daemon/jobs/job_ops.h"
#include "daemon/jobs/shim_fields.h"
#include "protocol/error.h"
#include "protocol/flat_message.h"

using namespace lpd::daemon;
using lpd::protocol::Error;
using lpd::protocol::ErrorCode;
using lpd::protocol::Fields;
using nlohmann::json;

namespace {

/// The error `decode` throws for `body`: its code and message.
template <typename Decode>
std::pair<ErrorCode, std::string> refusal(const json& body, Decode decode) {
  try {
    decode(Fields(body));
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  FAIL("not refused: " << body.dump());
  return {};
}

}  // namespace

TEST_CASE("test.finish as a TestResult: defaults, wasxfail, and what is refused", "[job][shimfields]") {
  const json minimal = {{"nodeid", "t.py::a"}};
  TestResult r = test_result_of(Fields(minimal));
  CHECK(r.nodeid == "t.py::a");
  CHECK(r.outcome == "passed");
  CHECK(r.phase == "call");
  CHECK(r.reruns == 0);
  CHECK_FALSE(r.xfail_reason);
  // pytest's report.wasxfail: "reason: " dropped as junitxml does; true takes the message.
  const json xfailed = {{"nodeid", "t.py::b"}, {"outcome", "skipped"}, {"wasxfail", "reason: flaky disk"}};
  CHECK(test_result_of(Fields(xfailed)).xfail_reason == "flaky disk");
  const json xfailed_true = {{"nodeid", "t.py::b"}, {"outcome", "skipped"}, {"wasxfail", true}, {"message", "why"}};
  CHECK(test_result_of(Fields(xfailed_true)).xfail_reason == "why");

  CHECK(refusal({{"nodeid", "t.py::a"}, {"outcome", "xpassed"}}, test_result_of) ==
        std::pair{ErrorCode::kBadRequest,
                  std::string("field \"outcome\" must be passed, failed, error, skipped or interrupted, not \"xpassed\"")});
  CHECK(refusal({{"nodeid", "t.py::a"}, {"reruns", -1}}, test_result_of) ==
        std::pair{ErrorCode::kBadRequest, std::string("field \"reruns\" must be 0..1000000")});
  CHECK(refusal({{"nodeid", "t.py::a"}, {"wasxfail", 3}}, test_result_of) ==
        std::pair{ErrorCode::kBadRequest, std::string("field \"wasxfail\" must be a string or a boolean")});
  // A long nodeid (pytest makes one of a long parametrize value) is
  // shortened, not refused: refusing lost the test's result.
  const std::string long_id = "t.py::test_x[" + std::string(kMaxNodeidBytes, 'x') + "]";
  const TestResult kept = test_result_of(Fields(json{{"nodeid", long_id}, {"outcome", "failed"}, {"name", long_id}}));
  CHECK(kept.nodeid == lpd::protocol::shortened_nodeid(long_id));
  CHECK(kept.nodeid.size() <= kMaxNodeidBytes);
  CHECK(kept.name == kept.nodeid);
  CHECK(kept.outcome == "failed");
  CHECK(test_start_of(Fields(json{{"nodeid", long_id}})).nodeid == kept.nodeid);  // still matches its start
  // A long message is cut, not refused.
  const json chatty = {{"nodeid", "t.py::a"}, {"outcome", "failed"}, {"message", std::string(10'000, 'm')}};
  CHECK(test_result_of(Fields(chatty)).message.size() <= kMaxMessageBytes + 64);
}

TEST_CASE("test.finish decodes the same from a flat record as from a JSON tree", "[job][shimfields]") {
  const std::string line =
      R"({"op":"test.finish","nodeid":"t.py::a","outcome":"failed","phase":"setup","duration":0.5,"reruns":2})";
  const auto flat = lpd::protocol::parse_flat_message(line);
  REQUIRE(flat);
  const TestResult from_flat = test_result_of(Fields(*flat));
  const json tree = json::parse(line);
  const TestResult from_tree = test_result_of(Fields(tree));
  CHECK(from_flat.to_json() == from_tree.to_json());
  CHECK(from_flat.outcome == "failed");
  CHECK(from_flat.phase == "setup");
  CHECK(from_flat.reruns == 2);
}

TEST_CASE("test.start, test.phase and session.error: the phase words each takes", "[job][shimfields]") {
  CHECK(test_start_of(Fields(json{{"nodeid", "t.py::a"}})).phase == "setup");
  CHECK(test_start_of(Fields(json{{"nodeid", "t.py::a"}, {"phase", "call"}})).phase == "call");
  CHECK(refusal({{"nodeid", "t.py::a"}, {"phase", "teardown"}}, test_start_of) ==
        std::pair{ErrorCode::kBadRequest, std::string("field \"phase\" of test.start must be setup or call, not \"teardown\"")});

  CHECK(phase_change_of(Fields(json{{"phase", "teardown"}})).of_test);
  CHECK_FALSE(phase_change_of(Fields(json{{"phase", "sessionfinish"}})).of_test);
  CHECK(refusal({{"phase", "lunch"}}, phase_change_of).second ==
        "field \"phase\" must be setup, call, teardown, collection, sessionstart, sessionfinish or exit, not \"lunch\"");

  const TestResult error = session_error_of(Fields(json{{"phase", "collection"}, {"nodeid", "u.py"}}));
  CHECK(error.outcome == "error");
  CHECK(error.phase == "collection");
  CHECK(refusal({{"phase", "call"}}, session_error_of).second ==
        "field \"phase\" must be collection, sessionstart, sessionfinish or exit, not \"call\"");
}

TEST_CASE("an xdist controller's messages: worker.down's end, worker.results' items", "[job][shimfields]") {
  const WorkerDown killed = worker_down_of(Fields(json{{"pid", 42}, {"returncode", -11}}));
  CHECK(killed.pid == 42);
  CHECK(killed.end.signal == 11);
  CHECK_FALSE(killed.end.exit_code);
  const WorkerDown exited = worker_down_of(Fields(json{{"pid", 42}, {"returncode", 3}}));
  CHECK(exited.end.exit_code == 3);
  CHECK_FALSE(exited.end.signal);

  const WorkerResults told = worker_results_of(
      Fields(json{{"worker_id", "gw1"}, {"results", {{{"nodeid", "t.py::a"}, {"outcome", "failed"}}}}}));
  REQUIRE(told.results.size() == 1);
  CHECK(told.results[0].worker_id == "gw1");
  CHECK(told.results[0].phase == "call");
  CHECK(refusal({{"worker_id", "gw1"}}, worker_results_of) ==
        std::pair{ErrorCode::kBadRequest, std::string("field \"results\" must be an array")});
  CHECK(refusal({{"worker_id", "gw1"}, {"results", {1}}}, worker_results_of).second ==
        "each of \"results\" must be an object");
  CHECK(refusal({{"worker_id", "gw1"}, {"results", {{{"nodeid", "a"}, {"outcome", "odd"}}}}}, worker_results_of)
            .second == "unknown outcome \"odd\"");
  CHECK(refusal({{"worker_id", "gw1"}, {"results", json(std::vector<json>(1001, json::object()))}}, worker_results_of) ==
        std::pair{ErrorCode::kTooLarge, std::string("field \"results\" holds over 1000 results")});

  CHECK(crash_signal_of(Fields(json{{"signal", 6}})) == 6);
  CHECK(refusal({{"signal", 65}}, crash_signal_of).second == "field \"signal\" must be a signal number");
}

TEST_CASE("run.start's spec: defaults, names, ranges, runners and report paths", "[job][shimfields]") {
  const json minimal = {{"argv", {"python3", "-m", "pytest"}}};
  const JobSpec spec = job_spec_of(Fields(minimal), minimal);
  CHECK(spec.cwd == "/");
  CHECK(spec.runner == Runner::kPytest);
  CHECK_FALSE(spec.run_as);  // the service's, from the caller
  const auto spec_of = [](const json& body) { return [&body](const Fields& f) { return job_spec_of(f, body); }; };
  const json no_command = {{"argv", json::array()}};
  CHECK(refusal(no_command, spec_of(no_command)).second == "field \"argv\" must name a command");
  const json relative = {{"argv", {"true"}}, {"cwd", "tmp"}};
  CHECK(refusal(relative, spec_of(relative)).second == "field \"cwd\" must be absolute");
  const json too_many = {{"argv", {"python3", "-m", "pytest"}}, {"retry_crashed", 101}};
  CHECK(refusal(too_many, spec_of(too_many)).second == "field \"retry_crashed\" must be between 0 and 100");
  const json no_runner = {{"argv", {"make", "check"}}, {"rerun_crashed", 1}};
  CHECK(refusal(no_runner, spec_of(no_runner)).second.rfind("--retry-crashed and --rerun-crashed need a test runner", 0) == 0);
  const json terminal = {{"argv", {"true"}}, {"terminal", {{"columns", 80}, {"rows", 0}}}};
  CHECK(refusal(terminal, spec_of(terminal)).second ==
        "field \"terminal\" must be {\"columns\": N, \"rows\": M}, each between 1 and 10000");
  const json junit = {{"argv", {"true"}}, {"junit", "out.xml"}};
  CHECK(refusal(junit, spec_of(junit)).second == "report path \"out.xml\" must be absolute");
  // A terminal merges stderr into stdout: nothing to keep apart.
  const json merged = {{"argv", {"true"}}, {"terminal", {{"columns", 80}, {"rows", 24}}}, {"separate_stderr", true}};
  CHECK_FALSE(job_spec_of(Fields(merged), merged).separate_stderr);
}

TEST_CASE("a run's kept failure texts are cut past their budget, saying so", "[job][shimfields]") {
  std::size_t used = 0;
  TestResult first;
  first.longrepr = std::string(6000, 'a');
  lpd::daemon::keep_within_budget(first, used, 10'000);
  CHECK(first.longrepr.size() == 6000);  // within the budget: as it came
  CHECK(used == 6000);
  TestResult second;
  second.longrepr = std::string(6000, 'b');
  second.system_out = "short";
  lpd::daemon::keep_within_budget(second, used, 10'000);
  CHECK(second.longrepr.size() < 6000);  // past it: cut, with the note
  CHECK(second.longrepr.find("[lpd: cut here") != std::string::npos);
  CHECK(second.system_out == "short");  // a short text is never cut
  CHECK(used == 6000 + second.longrepr.size() + 5);
}
