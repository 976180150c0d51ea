#pragma once

// What each of the shims' one-way messages says, decoded from its fields and
// checked as input from outside (sizes, outcome and phase words, ranges),
// with no I/O: shim_ops.cpp hands the result to JobService's typed API.
// Every function throws protocol::Error (bad_request, too_large) with the
// wording protocol/README.md documents.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/os/exit_status.h"
#include "daemon/reports/test_result.h"
#include "protocol/fields.h"
#include "protocol/nodeid.h"
#include "protocol/test_record.h"

namespace lpd::daemon {

/// A nodeid's bound: longer ones are shortened (protocol/nodeid.h).
using protocol::kMaxNodeidBytes;
/// The outcome and phase words pytest uses ("passed", "call", ...).
constexpr std::size_t kMaxWordBytes = 64;
/// A test's short failure text (reprcrash.message), skip or xfail reason,
/// and the external failure reason: cut, not refused, past this.
constexpr std::size_t kMaxMessageBytes = 4096;
/// How many nodeids one collection.items message may carry (the shim sends
/// chunks of 1000).
constexpr std::size_t kMaxItemsPerMessage = 10'000;
/// How many results one worker.results message may carry.
constexpr std::size_t kMaxWorkerResults = 1000;

/// `value` as is; throws too_large naming field `name` when it is over
/// `limit` bytes.
std::string bounded(const char* name, std::string value, std::size_t limit);

/// test.start {nodeid, phase?}: the test a process starts, and the phase it
/// starts in: "setup" when absent (pytest's shim: setup comes first), or
/// "call" (the native shim, whose API has no phases). Throws bad_request for
/// another phase, too_large for a long nodeid.
struct TestStart {
  std::string nodeid;
  std::string phase;
};
TestStart test_start_of(const protocol::Fields& f);
/// The same of a test.start in the shim's own text (protocol::TestRecord,
/// kind kStart): what test_start_of() makes of that line's fields.
TestStart test_start_of_record(const protocol::TestRecord& record);

/// test.finish {nodeid, outcome?, phase?, duration?, message?, longrepr?,
/// file?, line?, classname?, name?, reruns?, failure_reason?, system_out?,
/// wasxfail?} as the TestResult it reports (worker_id and attempt are the
/// service's to fill). Outcome defaults to "passed" and must be passed,
/// failed, error, skipped or interrupted (one lpd does not know would be
/// reported as something it is not); phase defaults to "call"; reruns is
/// 0..1000000; wasxfail is pytest's report.wasxfail, a string (a leading
/// "reason: " dropped, as junitxml does) or a boolean (true: the reason is
/// `message`). Texts are cut at their limits, names refused past theirs.
TestResult test_result_of(const protocol::Fields& f);
/// The same of a passed test.finish in the shim's own text
/// (protocol::TestRecord, kind kPassed): what test_result_of() makes of
/// that line's fields, the duration checked the same way (bad_request
/// outside 0 s to one year).
TestResult test_result_of_record(const protocol::TestRecord& record);

/// crash.notice {signal}: the signal number (1..64) a native crash handler
/// caught. Throws bad_request otherwise.
int crash_signal_of(const protocol::Fields& f);

/// worker.down {pid, returncode?}: an xdist worker the controller reaped,
/// and its end (a negative returncode is a signal, as in subprocess).
struct WorkerDown {
  pid_t pid = 0;
  ExitStatus end;
};
WorkerDown worker_down_of(const protocol::Fields& f);

/// worker.results {worker_id, results: [{nodeid, outcome, phase?,
/// duration?, message?, longrepr?}]}: a dead xdist worker's results as its
/// controller kept them (worker_id set on each). Throws bad_request (not an
/// array, an item not an object, an unknown outcome) or too_large (over
/// kMaxWorkerResults items, long names).
struct WorkerResults {
  std::string worker_id;
  std::vector<TestResult> results;
};
WorkerResults worker_results_of(const protocol::Fields& f);

/// worker.crashed {worker_id, nodeid, pid?, returncode?}: the test a dead
/// xdist worker was running, as its controller says.
struct WorkerCrashed {
  std::string worker_id;
  std::string nodeid;
  pid_t pid = 0;
  std::optional<std::int64_t> returncode;
};
WorkerCrashed worker_crashed_of(const protocol::Fields& f);

/// test.phase {phase, nodeid?}: the running test entered a phase (setup,
/// call, teardown: `of_test`) or the session did (collection, sessionstart,
/// sessionfinish, exit). Throws bad_request for another word.
struct PhaseChange {
  std::string phase;
  std::string nodeid;  // "" when the shim named none
  bool of_test = false;
};
PhaseChange phase_change_of(const protocol::Fields& f);

/// session.error {phase, nodeid?, message?, longrepr?}: a failure outside
/// any test, as the result lpd keeps of it (outcome "error", phase one of
/// the session's: collection, sessionstart, sessionfinish, exit).
TestResult session_error_of(const protocol::Fields& f);

/// collection.items {nodeids}: what a process collected. Throws too_large
/// past kMaxItemsPerMessage nodeids or a nodeid past kMaxNodeidBytes.
std::vector<std::string> collected_nodeids_of(const protocol::Fields& f);

}  // namespace lpd::daemon
