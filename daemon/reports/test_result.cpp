#include "daemon/reports/test_result.h"
#include "daemon/core/record_field.h"
#include "protocol/json_text.h"

#include <type_traits>

namespace lpd::daemon {

// String literals appended with their length known: `+= "..."` went through
// strlen, 6% of lpd's instructions per test.
using namespace std::string_view_literals;

nlohmann::json TestResult::to_json() const {
  nlohmann::json j = {{"nodeid", nodeid},   {"outcome", outcome},     {"phase", phase},  {"duration", duration},
                      {"message", message}, {"worker_id", worker_id}, {"attempt", attempt}};
  // The JUnit fields only when set: the common passed test stays small in
  // events and the journal.
  if (!longrepr.empty()) j["longrepr"] = longrepr;
  if (!file.empty()) j["file"] = file;
  if (line) j["line"] = *line;
  if (!classname.empty()) j["classname"] = classname;
  if (!name.empty()) j["name"] = name;
  if (reruns) j["reruns"] = reruns;
  if (!failure_reason.empty()) j["failure_reason"] = failure_reason;
  if (xfail_reason) j["xfail_reason"] = *xfail_reason;
  if (!system_out.empty()) j["system_out"] = system_out;
  if (!system_err.empty()) j["system_err"] = system_err;
  return j;
}

std::string TestResult::to_json_text() const {
  using protocol::append_json_string;
  std::string out;
  out.reserve(96 + nodeid.size() + message.size() + longrepr.size() + system_out.size() + system_err.size());
  // nlohmann's object is a std::map: its keys in sorted order, as here.
  out += "{\"attempt\":"sv;
  protocol::append_json_integer(out, attempt);
  auto optional_text = [&out](const char* key, const std::string& value) {
    if (value.empty()) return;
    out += key;
    append_json_string(out, value);
  };
  optional_text(",\"classname\":", classname);
  out += ",\"duration\":"sv;
  protocol::append_json_number(out, duration);
  optional_text(",\"failure_reason\":", failure_reason);
  optional_text(",\"file\":", file);
  if (line) {
    out += ",\"line\":"sv;
    protocol::append_json_integer(out, *line);
  }
  optional_text(",\"longrepr\":", longrepr);
  out += ",\"message\":"sv;
  append_json_string(out, message);
  optional_text(",\"name\":", name);
  out += ",\"nodeid\":"sv;
  append_json_string(out, nodeid);
  out += ",\"outcome\":"sv;
  append_json_string(out, outcome);
  out += ",\"phase\":"sv;
  append_json_string(out, phase);
  if (reruns) {
    out += ",\"reruns\":"sv;
    protocol::append_json_integer(out, reruns);
  }
  optional_text(",\"system_err\":", system_err);
  optional_text(",\"system_out\":", system_out);
  out += ",\"worker_id\":"sv;
  append_json_string(out, worker_id);
  if (xfail_reason) {
    out += ",\"xfail_reason\":"sv;
    append_json_string(out, *xfail_reason);
  }
  out += '}';
  return out;
}

TestResult TestResult::from_json(const nlohmann::json& j) {
  // A journal line may come from an older lpd or be damaged: every field
  // is optional and a field of the wrong type reads as absent.
  TestResult r;
  r.nodeid = field_or<std::string>(j, "nodeid", "");
  r.outcome = field_or<std::string>(j, "outcome", "");
  r.phase = field_or<std::string>(j, "phase", "");
  r.duration = field_or<double>(j, "duration", 0.0);
  r.message = field_or<std::string>(j, "message", "");
  r.worker_id = field_or<std::string>(j, "worker_id", "");
  r.attempt = field_or<int>(j, "attempt", 1);
  r.longrepr = field_or<std::string>(j, "longrepr", "");
  r.file = field_or<std::string>(j, "file", "");
  if (auto it = j.find("line"); it != j.end() && it->is_number_integer()) r.line = it->get<long long>();
  r.classname = field_or<std::string>(j, "classname", "");
  r.name = field_or<std::string>(j, "name", "");
  r.reruns = field_or<int>(j, "reruns", 0);
  r.failure_reason = field_or<std::string>(j, "failure_reason", "");
  if (auto it = j.find("xfail_reason"); it != j.end() && it->is_string()) r.xfail_reason = it->get<std::string>();
  r.system_out = field_or<std::string>(j, "system_out", "");
  r.system_err = field_or<std::string>(j, "system_err", "");
  return r;
}

std::string truncated_text(std::string text, std::size_t limit) {
  if (text.size() <= limit) return text;
  const std::size_t total = text.size();
  std::size_t cut = limit;
  // Back up to the start of a UTF-8 character.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  text += "\n[lpd: cut here, " + std::to_string(total - cut) + " more bytes not kept]";
  return text;
}

void keep_within_budget(TestResult& r, std::size_t& used, std::size_t budget) {
  constexpr std::size_t kCut = 4096;
  for (std::string* text : {&r.longrepr, &r.system_out, &r.system_err}) {
    if (used + text->size() > budget && text->size() > kCut) *text = truncated_text(std::move(*text), kCut);
    used += text->size();
  }
}

}  // namespace lpd::daemon
