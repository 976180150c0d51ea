#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lpd::client::report_patch {

/// One crashed test as the report patchers need it: the nodeid it is filed
/// under and what to say about the crash. Built from lpd's crash records
/// (`crash.list`) or from the lines of a pytest-abort crash log; both use
/// pytest-abort's field names (nodeid, reason, duration, crash_time, gpu_id).
struct CrashedTest {
  std::string nodeid;
  std::string reason;       // "killed by SIGSEGV while running ..."; may be empty
  double duration = 0;      // seconds the test ran before the crash, 0 when unknown
  std::string crash_time;   // as the record gave it (lpd: epoch seconds; pytest-abort: ISO text)
  std::string signal_name;  // "SIGSEGV", empty when unknown
  std::string traceback;    // the Python traceback lpd caught, may be empty
  nlohmann::json record;    // the whole record, kept for the JSON report's metadata
};

/// Builds the list of crashed tests from crash records (JSON objects), as
/// pytest-abort-postprocess does: records without a non-blank string
/// `nodeid` are skipped, nodeids are trimmed of surrounding whitespace, and
/// each nodeid is kept once, where it first appears, with that record's
/// details. Records marked `"flaky": true` (lpd: the test passed when run
/// again) are skipped too: they did not fail the run. Never throws.
std::vector<CrashedTest> crashed_tests_from_records(const std::vector<nlohmann::json>& records);

/// The records of a JSONL crash log (one JSON object a line). Blank lines,
/// lines that are not JSON objects and a torn last line (a writer that died
/// mid-line) are skipped, as pytest-abort does; `skipped` (if given) counts
/// the non-blank lines skipped. Never throws.
std::vector<nlohmann::json> crash_log_records(std::string_view text, std::size_t* skipped = nullptr);

/// "path/to/test_x.py::TestA::test_b[1]" split the way pytest builds it:
/// the file part, the dotted module ("path.to.test_x"), and the test's own
/// name (the last "::" part). Plain rule.
struct NodeidParts {
  std::string file;
  std::string module;
  std::string name;
};
NodeidParts split_nodeid(std::string_view nodeid);

/// The failure text the patchers write for a crash: "crashed: REASON", the
/// signal and the traceback when known. Plain rule.
std::string crash_text(const CrashedTest& crash);

}  // namespace lpd::client::report_patch
