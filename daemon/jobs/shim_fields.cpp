#include "daemon/jobs/shim_fields.h"

#include <set>
#include <string_view>

#include "protocol/error.h"

namespace lpd::daemon {
namespace {

using protocol::Error;
using protocol::ErrorCode;

/// The outcomes a test.finish (or a controller's worker.results) may say:
/// one lpd does not know would be reported as something it is not.
const std::set<std::string, std::less<>> kOutcomes = {"passed", "failed", "error", "skipped", "interrupted"};

constexpr std::string_view kTestPhases[] = {"setup", "call", "teardown"};

template <std::size_t N>
bool one_of(const std::string& word, const std::string_view (&words)[N]) {
  for (auto w : words)
    if (word == w) return true;
  return false;
}

}  // namespace

std::string bounded(const char* name, std::string value, std::size_t limit) {
  if (value.size() > limit)
    throw Error(ErrorCode::kTooLarge, std::string("field \"") + name + "\" is over " + std::to_string(limit) + " bytes");
  return value;
}

TestStart test_start_of(const protocol::Fields& f) {
  TestStart start;
  start.nodeid = protocol::shortened_nodeid(f.string("nodeid"));
  start.phase = f.optional_string("phase").value_or("setup");
  if (start.phase != "setup" && start.phase != "call")
    throw Error(ErrorCode::kBadRequest, "field \"phase\" of test.start must be setup or call, not \"" +
                                            bounded("phase", start.phase, kMaxWordBytes) + "\"");
  return start;
}

TestStart test_start_of_record(const protocol::TestRecord& record) {
  return TestStart{protocol::shortened_nodeid(std::string(record.nodeid)), "setup"};
}

TestResult test_result_of_record(const protocol::TestRecord& record) {
  TestResult r;
  r.nodeid = protocol::shortened_nodeid(std::string(record.nodeid));
  r.outcome = "passed";
  r.phase = "call";
  r.duration = protocol::seconds_in_range("duration", record.duration);
  return r;
}

TestResult test_result_of(const protocol::Fields& f) {
  TestResult r;
  r.nodeid = protocol::shortened_nodeid(f.string("nodeid"));
  r.outcome = bounded("outcome", f.optional_string("outcome").value_or("passed"), kMaxWordBytes);
  if (!kOutcomes.count(r.outcome))
    throw Error(ErrorCode::kBadRequest,
                "field \"outcome\" must be passed, failed, error, skipped or interrupted, not \"" + r.outcome + "\"");
  r.phase = bounded("phase", f.optional_string("phase").value_or("call"), kMaxWordBytes);
  r.duration = f.optional_seconds("duration").value_or(0);
  r.message = truncated_text(f.optional_string("message").value_or(""), kMaxMessageBytes);
  // The JUnit fields (the shim computes them as pytest's --junitxml would).
  r.longrepr = truncated_text(f.optional_string("longrepr").value_or(""), kMaxLongrepr);
  r.file = protocol::shortened_nodeid(f.optional_string("file").value_or(""));
  r.line = f.optional_integer("line");
  r.classname = protocol::shortened_nodeid(f.optional_string("classname").value_or(""));
  r.name = protocol::shortened_nodeid(f.optional_string("name").value_or(""));
  const auto reruns = f.optional_integer("reruns").value_or(0);
  if (reruns < 0 || reruns > 1'000'000) throw Error(ErrorCode::kBadRequest, "field \"reruns\" must be 0..1000000");
  r.reruns = static_cast<int>(reruns);
  r.failure_reason = truncated_text(f.optional_string("failure_reason").value_or(""), kMaxMessageBytes);
  // a failed test's helper log lines, for its <system-out>.
  r.system_out = truncated_text(f.optional_string("system_out").value_or(""), kMaxSystemOut);
  // pytest's report.wasxfail as is (junitxml drops a leading "reason: "),
  // or true with the reason in `message`.
  if (const nlohmann::json* wasxfail = f.raw("wasxfail")) {
    if (wasxfail->is_string()) {
      std::string reason = wasxfail->get<std::string>();
      if (reason.rfind("reason: ", 0) == 0) reason.erase(0, 8);
      r.xfail_reason = truncated_text(std::move(reason), kMaxMessageBytes);
    } else if (wasxfail->is_boolean()) {
      if (wasxfail->get<bool>()) r.xfail_reason = r.message;
    } else if (!wasxfail->is_null()) {
      throw Error(ErrorCode::kBadRequest, "field \"wasxfail\" must be a string or a boolean");
    }
  }
  return r;
}

int crash_signal_of(const protocol::Fields& f) {
  const auto signo = f.integer("signal");
  if (signo <= 0 || signo >= 65) throw Error(ErrorCode::kBadRequest, "field \"signal\" must be a signal number");
  return static_cast<int>(signo);
}

WorkerDown worker_down_of(const protocol::Fields& f) {
  WorkerDown down;
  down.pid = static_cast<pid_t>(f.integer("pid"));
  const auto returncode = f.optional_integer("returncode");
  if (returncode && *returncode < 0) down.end.signal = static_cast<int>(-*returncode);
  if (returncode && *returncode >= 0) down.end.exit_code = static_cast<int>(*returncode);
  return down;
}

WorkerResults worker_results_of(const protocol::Fields& f) {
  WorkerResults told;
  told.worker_id = bounded("worker_id", f.string("worker_id"), kMaxWordBytes);
  const nlohmann::json* items = f.raw("results");
  if (!items || !items->is_array()) throw Error(ErrorCode::kBadRequest, "field \"results\" must be an array");
  if (items->size() > kMaxWorkerResults)
    throw Error(ErrorCode::kTooLarge, "field \"results\" holds over " + std::to_string(kMaxWorkerResults) + " results");
  told.results.reserve(items->size());
  for (const auto& item : *items) {
    if (!item.is_object()) throw Error(ErrorCode::kBadRequest, "each of \"results\" must be an object");
    const protocol::Fields fields(item);
    TestResult r;
    r.nodeid = protocol::shortened_nodeid(fields.string("nodeid"));
    r.outcome = bounded("outcome", fields.string("outcome"), kMaxWordBytes);
    if (!kOutcomes.count(r.outcome)) throw Error(ErrorCode::kBadRequest, "unknown outcome \"" + r.outcome + "\"");
    r.phase = bounded("phase", fields.optional_string("phase").value_or("call"), kMaxWordBytes);
    r.duration = fields.optional_seconds("duration").value_or(0);
    r.message = truncated_text(fields.optional_string("message").value_or(""), kMaxMessageBytes);
    r.longrepr = truncated_text(fields.optional_string("longrepr").value_or(""), kMaxLongrepr);
    r.worker_id = told.worker_id;
    told.results.push_back(std::move(r));
  }
  return told;
}

WorkerCrashed worker_crashed_of(const protocol::Fields& f) {
  WorkerCrashed crashed;
  crashed.worker_id = bounded("worker_id", f.string("worker_id"), kMaxWordBytes);
  crashed.nodeid = protocol::shortened_nodeid(f.string("nodeid"));
  crashed.pid = static_cast<pid_t>(f.optional_integer("pid").value_or(0));
  crashed.returncode = f.optional_integer("returncode");
  return crashed;
}

PhaseChange phase_change_of(const protocol::Fields& f) {
  PhaseChange change;
  change.phase = bounded("phase", f.string("phase"), kMaxWordBytes);
  change.nodeid = protocol::shortened_nodeid(f.optional_string("nodeid").value_or(""));
  change.of_test = one_of(change.phase, kTestPhases);
  if (!change.of_test && !is_session_phase(change.phase))
    throw Error(ErrorCode::kBadRequest, "field \"phase\" must be setup, call, teardown, collection, "
                                        "sessionstart, sessionfinish or exit, not \"" + change.phase + "\"");
  return change;
}

TestResult session_error_of(const protocol::Fields& f) {
  // Kept as a result whose phase is the session's: the JUnit report makes
  // it a testcase named for the phase, and the final exit code non-zero.
  TestResult r;
  r.phase = bounded("phase", f.string("phase"), kMaxWordBytes);
  if (!is_session_phase(r.phase))
    throw Error(ErrorCode::kBadRequest,
                "field \"phase\" must be collection, sessionstart, sessionfinish or exit, not \"" + r.phase + "\"");
  r.nodeid = protocol::shortened_nodeid(f.optional_string("nodeid").value_or(""));
  r.outcome = "error";
  r.message = truncated_text(f.optional_string("message").value_or(""), kMaxMessageBytes);
  r.longrepr = truncated_text(f.optional_string("longrepr").value_or(""), kMaxLongrepr);
  return r;
}

std::vector<std::string> collected_nodeids_of(const protocol::Fields& f) {
  // One line is at most 1 MiB: that bounds each message; the run's total is
  // the service's to bound.
  std::vector<std::string> nodeids = f.string_list("nodeids");
  if (nodeids.size() > kMaxItemsPerMessage)
    throw Error(ErrorCode::kTooLarge, "field \"nodeids\" holds over " + std::to_string(kMaxItemsPerMessage) + " items");
  // Shortened in place, as test.start and test.finish shorten them, so the
  // list names the same tests (a copy only of the rare long one).
  for (auto& nodeid : nodeids)
    if (nodeid.size() > kMaxNodeidBytes) nodeid = protocol::shortened_nodeid(std::move(nodeid));
  return nodeids;
}

}  // namespace lpd::daemon
