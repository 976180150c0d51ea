#include "client/report_patch/json_report.h"

#include <stdexcept>
#include <unordered_set>

namespace lpd::client::report_patch {
namespace {

using ojson = nlohmann::ordered_json;

/// The crash record, kept whole in the test's metadata (ordered like the rest).
ojson record_of(const CrashedTest& c) {
  ojson record = ojson::parse(c.record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), nullptr, false);
  return record.is_object() ? record : ojson::object();
}

ojson test_entry(const CrashedTest& c) {
  const NodeidParts parts = split_nodeid(c.nodeid);
  const std::string text = crash_text(c);
  const std::string message = "crashed: " + (c.reason.empty() ? std::string("the test process died") : c.reason);
  return ojson{
      {"nodeid", c.nodeid},
      {"lineno", 0},
      {"keywords", ojson::array({parts.name, parts.file, "crashed"})},
      {"outcome", "failed"},
      {"setup", {{"duration", 0.0}, {"outcome", "passed"}}},
      {"call",
       {{"duration", c.duration},
        {"outcome", "failed"},
        {"crash", {{"path", parts.file}, {"lineno", 0}, {"message", message}}},
        {"longrepr", text}}},
      {"metadata", {{"lpd_crash", record_of(c)}}},
  };
}

void add_count(ojson& summary, const char* key, std::size_t n) {
  const auto it = summary.find(key);
  const std::int64_t before = it != summary.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
  summary[key] = before + static_cast<std::int64_t>(n);
}

}  // namespace

PatchResult patch_json_report(const std::optional<std::string>& existing, const std::vector<CrashedTest>& crashed,
                              const std::string& root, double now) {
  ojson report;
  bool indented = false;
  if (existing) {
    report = ojson::parse(*existing, nullptr, /*allow_exceptions=*/false);
    if (report.is_discarded() || !report.is_object())
      throw std::runtime_error("not a pytest-json-report file (not a JSON object)");
    // pytest-json-report writes one line unless --json-report-indent was given.
    indented = existing->find('\n') != std::string::npos && existing->find('\n') + 1 < existing->size();
  } else {
    report = ojson{{"created", now},       {"duration", 0.0}, {"exitcode", 1},
                   {"root", root},         {"environment", ojson::object()},
                   {"summary", ojson::object()}, {"collectors", ojson::array()}, {"tests", ojson::array()}};
  }
  if (!report.contains("tests")) report["tests"] = ojson::array();
  if (!report.contains("summary")) report["summary"] = ojson::object();
  ojson& tests = report["tests"];
  ojson& summary = report["summary"];
  if (!tests.is_array()) throw std::runtime_error("not a pytest-json-report file (\"tests\" is not a list)");
  if (!summary.is_object()) throw std::runtime_error("not a pytest-json-report file (\"summary\" is not an object)");

  std::unordered_set<std::string> present;
  for (const auto& t : tests)
    if (t.is_object() && t.contains("nodeid") && t["nodeid"].is_string()) present.insert(t["nodeid"].get<std::string>());
  PatchResult result;
  for (const auto& c : crashed) {
    if (!present.insert(c.nodeid).second) continue;
    tests.push_back(test_entry(c));
    ++result.added;
  }
  if (result.added == 0 && existing) return result;
  add_count(summary, "failed", result.added);
  add_count(summary, "total", result.added);
  const auto total = summary["total"].get<std::int64_t>();
  const auto collected = summary.find("collected");
  if (collected == summary.end() || !collected->is_number_integer() || collected->get<std::int64_t>() < total)
    summary["collected"] = total;
  if (const auto code = report.find("exitcode"); code == report.end() || (code->is_number_integer() && *code == 0))
    report["exitcode"] = 1;
  result.text = report.dump(indented ? 4 : -1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (indented) *result.text += "\n";
  return result;
}

}  // namespace lpd::client::report_patch
