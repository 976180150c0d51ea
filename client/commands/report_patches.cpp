// lpctl report --json-report/--html-report/--csv-report: the crashed tests of
// a run (or of a pytest-abort crash log) patched into the reports other
// pytest plugins wrote, as pytest-abort-postprocess does.
#include "client/commands/report_patches.h"

#include <unistd.h>

#include <ctime>
#include <iostream>
#include <vector>

#include "client/report_patch/csv_report.h"
#include "client/report_patch/html_report.h"
#include "client/report_patch/json_report.h"
#include "client/report_patch/report_file.h"
#include "protocol/error.h"

namespace lpd::client {
namespace {

namespace rp = report_patch;

/// A crash log is a list of crashes, far smaller than a report; the same
/// bound as a report keeps one read bounded.
std::vector<json> records_from_crash_log(const std::string& path) {
  const rp::ReportFile file = rp::read_report(path);
  if (!file.text) throw std::runtime_error("cannot read crash log " + path + ": No such file or directory");
  std::size_t skipped = 0;
  auto records = rp::crash_log_records(*file.text, &skipped);
  if (skipped > 0)
    std::cerr << "lpctl: " << path << ": " << skipped << " line(s) that are not JSON objects were skipped\n";
  return records;
}

/// Whether lpd knows run `run_id` (supervised or not): asked only when it
/// has no crash records, so a mistyped id is an error rather than reports
/// patched with nothing (or made empty).
bool run_known(Connection& connection, const std::string& run_id) {
  try {
    connection.request("run.info", {{"run_id", run_id}});
    return true;
  } catch (const protocol::Error& e) {
    if (e.code() != protocol::ErrorCode::kNotFound) throw;
  }
  // Not one lpctl run started: a plain pytest's run is in run.list.
  json fields = {{"all", true}};
  for (;;) {
    const json page = connection.request("run.list", fields);
    for (const auto& r : page.value("runs", json::array()))
      if (r.is_object() && r.contains("run_id") && r["run_id"] == run_id) return true;
    const auto next = page.find("next");
    if (next == page.end() || next->is_null()) return false;
    fields["after"] = *next;
  }
}

std::vector<json> records_from_lpd(const GlobalOptions& global, const std::string& run_id) {
  auto connection = global.connect();
  std::vector<json> records;
  json fields = {{"run_id", run_id}};
  for (;;) {
    const json page = connection.request("crash.list", fields);
    for (const auto& c : page.value("crashes", json::array())) records.push_back(c);
    const auto next = page.find("next");
    if (next == page.end() || !next->is_number_unsigned()) break;
    fields["after"] = *next;
  }
  if (records.empty() && !run_known(connection, run_id))
    throw protocol::Error(protocol::ErrorCode::kNotFound, "lpd knows no run \"" + run_id + "\"");
  return records;
}

std::string current_dir() {
  char cwd[4096];
  return ::getcwd(cwd, sizeof(cwd)) ? std::string(cwd) : std::string();
}

std::string base_name(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// Reads, patches and replaces one report; says what it did.
bool patch_one(const char* kind, const std::string& path, const std::vector<rp::CrashedTest>& crashed) {
  try {
    rp::ReportFile file = rp::read_report(path);
    // An empty file is a report whose writer died before it wrote anything:
    // made anew, as a missing one is. A torn one is refused by the patchers.
    if (file.text && file.text->find_first_not_of(" \t\r\n") == std::string::npos) file.text.reset();
    rp::PatchResult result;
    if (std::string(kind) == "json")
      result = rp::patch_json_report(file.text, crashed, current_dir(), static_cast<double>(std::time(nullptr)));
    else if (std::string(kind) == "html")
      result = rp::patch_html_report(file.text, crashed, base_name(path));
    else
      result = rp::patch_csv_report(file.text, crashed);
    if (result.text) rp::replace_report(path, *result.text, file.mode, file.owner);
    if (!file.text)
      std::cout << "created " << path << " (" << result.added << " crashed test(s))\n";
    else if (result.added > 0)
      std::cout << "patched " << path << ": added " << result.added << " crashed test(s)\n";
    else
      std::cout << "unchanged " << path << ": it already lists every crashed test\n";
    return true;
  } catch (const std::exception& e) {
    std::string why = e.what();
    if (why.rfind("cannot ", 0) != 0) why = "cannot patch " + path + ": " + why;
    std::cerr << "lpctl: error: " << why << "\n";
    return false;
  }
}

}  // namespace

void add_report_patch_options(CLI::App& app, ReportPatchOptions& o) {
  app.add_option("--json-report", o.json_report,
                 "Add the crashed tests to this pytest-json-report file (made if missing)");
  app.add_option("--html-report", o.html_report, "Add the crashed tests to this pytest-html report (made if missing)");
  app.add_option("--csv-report", o.csv_report, "Add the crashed tests to this pytest-csv report (made if missing)");
  app.add_option("--crash-log", o.crash_log,
                 "Take the crashed tests from this crash log (JSONL, pytest-abort's) instead of lpd's records");
}

int patch_reports(const GlobalOptions& global, const std::string& run_id, const ReportPatchOptions& o) {
  const std::vector<json> records =
      o.crash_log.empty() ? records_from_lpd(global, run_id) : records_from_crash_log(o.crash_log);
  const auto crashed = rp::crashed_tests_from_records(records);
  std::size_t outside_tests = 0;
  for (const auto& r : records)
    if (r.is_object() && (!r.contains("nodeid") || !r["nodeid"].is_string() || r["nodeid"].get<std::string>().empty()))
      ++outside_tests;
  if (outside_tests > 0)
    std::cerr << "lpctl: " << outside_tests << " crash(es) outside any test (no nodeid) are not in these reports\n";
  bool ok = true;
  if (!o.json_report.empty()) ok = patch_one("json", o.json_report, crashed) && ok;
  if (!o.html_report.empty()) ok = patch_one("html", o.html_report, crashed) && ok;
  if (!o.csv_report.empty()) ok = patch_one("csv", o.csv_report, crashed) && ok;
  return ok ? kExitOk : kExitFailed;
}

}  // namespace lpd::client
