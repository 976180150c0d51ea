#include "client/report_patch/crashed_tests.h"

#include <unordered_set>

namespace lpd::client::report_patch {
namespace {

std::string_view trimmed(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n\f\v");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n\f\v");
  return s.substr(first, last - first + 1);
}

std::string string_field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string text_of(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  return it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::vector<CrashedTest> crashed_tests_from_records(const std::vector<nlohmann::json>& records) {
  std::vector<CrashedTest> out;
  std::unordered_set<std::string> seen;
  for (const auto& r : records) {
    if (!r.is_object()) continue;
    const auto flaky = r.find("flaky");
    if (flaky != r.end() && flaky->is_boolean() && flaky->get<bool>()) continue;
    const std::string nodeid(trimmed(string_field(r, "nodeid")));
    if (nodeid.empty() || !seen.insert(nodeid).second) continue;
    CrashedTest c;
    c.nodeid = nodeid;
    c.reason = string_field(r, "reason");
    if (const auto d = r.find("duration"); d != r.end() && d->is_number()) c.duration = d->get<double>();
    c.crash_time = text_of(r, "crash_time");
    c.signal_name = string_field(r, "signal_name");
    c.traceback = string_field(r, "traceback");
    c.record = r;
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<nlohmann::json> crash_log_records(std::string_view text, std::size_t* skipped) {
  std::vector<nlohmann::json> out;
  std::size_t bad = 0;
  while (!text.empty()) {
    const auto newline = text.find('\n');
    const std::string_view line = trimmed(text.substr(0, newline));
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object())
      out.push_back(std::move(j));
    else
      ++bad;
  }
  if (skipped) *skipped = bad;
  return out;
}

NodeidParts split_nodeid(std::string_view nodeid) {
  NodeidParts p;
  const auto sep = nodeid.find("::");
  p.file = std::string(nodeid.substr(0, sep));
  const auto last = nodeid.rfind("::");
  p.name = std::string(sep == std::string_view::npos ? nodeid : nodeid.substr(last + 2));
  std::string module = p.file;
  if (module.size() > 3 && module.compare(module.size() - 3, 3, ".py") == 0) module.resize(module.size() - 3);
  for (char& ch : module)
    if (ch == '/') ch = '.';
  p.module = module;
  return p;
}

std::string crash_text(const CrashedTest& crash) {
  std::string text = "crashed: " + (crash.reason.empty() ? std::string("the test process died") : crash.reason);
  if (!crash.signal_name.empty() && crash.reason.find(crash.signal_name) == std::string::npos)
    text += " (" + crash.signal_name + ")";
  if (!crash.traceback.empty()) text += "\n" + crash.traceback;
  return text;
}

}  // namespace lpd::client::report_patch
