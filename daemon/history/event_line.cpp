#include "daemon/history/event_line.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>

namespace lpd::daemon {

namespace {
constexpr std::string_view kSeqPrefix = "{\"seq\":";

std::string dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// Appends `text` as a JSON string. Event types and run ids are plain ASCII
/// words, written as they are; anything else goes through the JSON library.
void append_string(std::string& out, std::string_view text) {
  const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
  if (!plain) {
    out += dump(std::string(text));
    return;
  }
  out += '"';
  out += text;
  out += '"';
}

/// Appends `value` as a JSON number: the shortest text that reads back as it.
void append_number(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";  // what the JSON library writes for them
    return;
  }
  char buffer[32];
  const auto [end, ec] = std::to_chars(std::begin(buffer), std::end(buffer), value);
  if (ec != std::errc()) {
    out += dump(value);
    return;
  }
  out.append(buffer, end);
}
}  // namespace

std::string encode_event_line(const Event& e) {
  std::string line;
  line.reserve(128);
  line += kSeqPrefix;
  line += std::to_string(e.seq);
  line += ",\"time\":";
  append_number(line, e.time);
  line += ",\"event\":";
  append_string(line, e.type);
  line += ",\"run_id\":";
  append_string(line, e.run_id);
  line += ",\"owner\":";
  line += std::to_string(e.owner);
  line += ",\"data\":";
  line += e.data_text();
  line += "}\n";
  return line;
}

std::string encode_run_journal_line(const Event& e) {
  const auto& data = e.data;
  const bool spliceable = data.is_object() && !data.contains("event") && !data.contains("seq") &&
                          !data.contains("time") && !data.contains("run_id");
  if (!spliceable) {
    nlohmann::json line = e.push_data();
    line["event"] = e.type;
    std::string text = dump(line);
    text.push_back('\n');
    return text;
  }
  const std::string& fields = e.data_text();  // "{...}"
  std::string line;
  line.reserve(fields.size() + 96);
  line.append(fields, 0, fields.size() - 1);
  if (!data.empty()) line += ',';
  line += "\"event\":";
  append_string(line, e.type);
  line += ",\"seq\":";
  line += std::to_string(e.seq);
  line += ",\"time\":";
  append_number(line, e.time);
  if (!e.run_id.empty()) {
    line += ",\"run_id\":";
    append_string(line, e.run_id);
  }
  line += "}\n";
  return line;
}

std::optional<std::uint64_t> seq_of_line(std::string_view line) {
  if (line.substr(0, kSeqPrefix.size()) != kSeqPrefix) return std::nullopt;
  const char* begin = line.data() + kSeqPrefix.size();
  const char* end = line.data() + line.size();
  std::uint64_t seq = 0;
  auto [ptr, ec] = std::from_chars(begin, end, seq);
  if (ec != std::errc() || ptr == begin || ptr == end || *ptr != ',') return std::nullopt;
  return seq;
}

std::optional<Event> decode_event_line(std::string_view line) {
  const auto seq = seq_of_line(line);
  if (!seq) return std::nullopt;
  auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return std::nullopt;
  const auto time = parsed.find("time");
  const auto type = parsed.find("event");
  const auto run_id = parsed.find("run_id");
  const auto owner = parsed.find("owner");
  const auto data = parsed.find("data");
  if (time == parsed.end() || !time->is_number() || type == parsed.end() || !type->is_string() ||
      run_id == parsed.end() || !run_id->is_string() || owner == parsed.end() || !owner->is_number_unsigned() ||
      data == parsed.end())
    return std::nullopt;
  Event e;
  e.seq = *seq;
  e.time = time->get<double>();
  e.type = type->get<std::string>();
  e.run_id = run_id->get<std::string>();
  const auto owner_value = owner->get<std::uint64_t>();
  if (owner_value > static_cast<uid_t>(-1)) return std::nullopt;
  e.owner = static_cast<uid_t>(owner_value);
  e.data = std::move(*data);
  return e;
}

}  // namespace lpd::daemon
