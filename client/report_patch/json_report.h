#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/report_patch/crashed_tests.h"

namespace lpd::client::report_patch {

/// What a patcher did to one report: the new text (nullopt when the report
/// already had every crashed test: patching twice changes nothing the second
/// time) and how many tests it added.
struct PatchResult {
  std::optional<std::string> text;
  std::size_t added = 0;
};

/// Adds the crashed tests a pytest-json-report file lacks (matched by
/// `nodeid` in "tests") as failed tests, in pytest-json-report's own shape:
/// nodeid, lineno (0: lpd does not know it), keywords, outcome "failed",
/// setup passed, call failed with crash {path, lineno, message} and
/// longrepr, and the crash record under "metadata" {"lpd_crash": ...}.
/// Every other key is kept as it was, in its order; the summary's "failed"
/// and "total" grow by the number added ("collected" too when it would fall
/// below "total"), and an "exitcode" of 0 becomes 1 (pytest's "tests
/// failed"). `existing` nullopt (no file) makes a new report with
/// pytest-json-report's top-level keys; `root` is its "root", `now` its
/// "created". Throws std::runtime_error when `existing` is not a JSON
/// object or its "tests"/"summary" are of the wrong type (the file is left
/// alone rather than guessed at).
PatchResult patch_json_report(const std::optional<std::string>& existing, const std::vector<CrashedTest>& crashed,
                              const std::string& root, double now);

}  // namespace lpd::client::report_patch
