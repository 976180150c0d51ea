#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/report_patch/crashed_tests.h"
#include "client/report_patch/json_report.h"

namespace lpd::client::report_patch {

/// pytest-csv's default columns, in its order: a new report gets these.
inline constexpr std::string_view kCsvDefaultHeader = "id,module,name,file,doc,markers,status,message,duration";

/// Adds a row for each crashed test a pytest-csv report lacks (matched on
/// its "id" column, the nodeid). The row fills the columns pytest-csv
/// names: id, module, name, file, status "failed", message (the crash),
/// duration; any other column stays empty. The header decides the
/// delimiter (, ; tab or |) and the line ending (pytest-csv writes \r\n),
/// fields are quoted as Python's csv module quotes them (when they hold the
/// delimiter, a quote or a line break), and every existing byte is kept.
/// `existing` nullopt makes a new report: kCsvDefaultHeader and the rows.
/// Throws std::runtime_error when the header has no "id" column.
PatchResult patch_csv_report(const std::optional<std::string>& existing, const std::vector<CrashedTest>& crashed);

/// The records of CSV text (RFC 4180: quoted fields may hold delimiters,
/// doubled quotes and line breaks), each a list of fields. Plain rule.
std::vector<std::vector<std::string>> parse_csv(std::string_view text, char delimiter);

}  // namespace lpd::client::report_patch
