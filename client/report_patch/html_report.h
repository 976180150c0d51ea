#pragma once

#include <optional>
#include <string>
#include <vector>

#include "client/report_patch/crashed_tests.h"
#include "client/report_patch/json_report.h"

namespace lpd::client::report_patch {

/// Adds the crashed tests a pytest-html (4.x) report lacks to its
/// `data-jsonblob` attribute: the HTML-escaped JSON the report's script
/// renders its table from ({"environment", "tests": {nodeid: [reports]},
/// ...}). Each crashed test becomes one report in pytest-html's shape
/// (result "Failed", testId, resultsTableRow cells, log with the crash).
/// Only that attribute's value is rewritten, with its own quote kept, and
/// the summary's "N Failed" and "N tests took" counts grow by the number
/// added (the Failed filter is enabled); every other byte is kept.
/// `existing` nullopt makes a small standalone report (title `title`) that
/// holds the same blob and a static table of the crashed tests.
/// Throws std::runtime_error when the file has no data-jsonblob (not a
/// pytest-html 4 report), more than one, or one that is not a JSON object
/// with "tests" an object or list: such a file is left alone.
PatchResult patch_html_report(const std::optional<std::string>& existing, const std::vector<CrashedTest>& crashed,
                              const std::string& title);

/// Where the data-jsonblob attribute's value is in `html`: offset and length
/// of the value between its quotes. Throws std::runtime_error when there is
/// none or more than one. Plain rule (exposed for tests).
struct AttributeSpan {
  std::size_t begin = 0;
  std::size_t length = 0;
};
AttributeSpan find_jsonblob(const std::string& html);

}  // namespace lpd::client::report_patch
