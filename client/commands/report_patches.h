#pragma once

#include <string>

#include "client/cli.h"

namespace lpd::client {

/// Where `lpctl report` (and pytest-abort-postprocess) patch the crashed
/// tests in: pytest-json-report JSON, pytest-html HTML, pytest-csv CSV, and
/// where the crashes come from (lpd's records of the run, or a crash log).
struct ReportPatchOptions {
  std::string json_report;
  std::string html_report;
  std::string csv_report;
  std::string crash_log;  // a pytest-abort crash log (JSONL) instead of lpd's records

  bool any() const { return !json_report.empty() || !html_report.empty() || !csv_report.empty(); }
};

/// Adds --json-report, --html-report, --csv-report and --crash-log to `app`.
void add_report_patch_options(CLI::App& app, ReportPatchOptions& options);

/// Patches each report named in `options` with the crashed tests of run
/// `run_id` (lpd's crash records, paged; needs a daemon) or, when
/// options.crash_log is set, of that JSONL file (no daemon needed). Each
/// report is read and replaced by lpctl, as the calling user
/// (report_patch/report_file.h); one that cannot be patched is said on
/// stderr and the others are still done. Prints one line per report.
/// Returns kExitOk, or kExitFailed when any report failed. Throws what
/// Connection throws (no daemon, unknown run).
int patch_reports(const GlobalOptions& global, const std::string& run_id, const ReportPatchOptions& options);

}  // namespace lpd::client
