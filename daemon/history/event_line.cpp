#include "daemon/history/event_line.h"

#include <charconv>

#include "protocol/json_text.h"

namespace lpd::daemon {

// String literals appended with their length known: `+= "..."` went through
// strlen, 6% of lpd's instructions per test.
using namespace std::string_view_literals;

namespace {
constexpr std::string_view kSeqPrefix = "{\"seq\":";

std::string dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
}  // namespace

EventLineParts::EventLineParts(const Event& e, std::string& buffer) {
  buffer.clear();
  buffer.reserve(64 + e.type.size() + e.run_id.size());
  protocol::append_json_unsigned(buffer, e.seq);
  const std::size_t time_at = buffer.size();
  protocol::append_json_number(buffer, e.time);
  const std::size_t type_at = buffer.size();
  protocol::append_json_string(buffer, e.type);
  const std::size_t run_id_at = buffer.size();
  protocol::append_json_string(buffer, e.run_id);
  // Views taken once the buffer is complete: it does not move after this.
  const std::string_view all = buffer;
  seq = all.substr(0, time_at);
  time = all.substr(time_at, type_at - time_at);
  type = all.substr(type_at, run_id_at - type_at);
  run_id = all.substr(run_id_at);
}

void append_event_line(std::string& out, const Event& e, const EventLineParts& parts) {
  out += kSeqPrefix;
  out += parts.seq;
  out += ",\"time\":"sv;
  out += parts.time;
  out += ",\"event\":"sv;
  out += parts.type;
  out += ",\"run_id\":"sv;
  out += parts.run_id;
  out += ",\"owner\":"sv;
  protocol::append_json_unsigned(out, e.owner);
  out += ",\"data\":"sv;
  out += e.data_text();
  out += "}\n"sv;
}

void append_event_line(std::string& out, const Event& e) { append_event_line(out, e, EventLineParts(e)); }

std::string encode_event_line(const Event& e) {
  std::string line;
  append_event_line(line, e);
  return line;
}

void append_run_journal_line(std::string& out, const Event& e, const EventLineParts& parts) {
  if (!e.data_is_plain_object()) {
    nlohmann::json line = e.push_data();
    line["event"] = e.type;
    out += dump(line);
    out += '\n';
    return;
  }
  const std::string& fields = e.data_text();  // "{...}"
  out.append(fields, 0, fields.size() - 1);
  if (fields.size() > 2) out += ',';  // not "{}"
  out += "\"event\":"sv;
  out += parts.type;
  out += ",\"seq\":"sv;
  out += parts.seq;
  out += ",\"time\":"sv;
  out += parts.time;
  if (!e.run_id.empty()) {
    out += ",\"run_id\":"sv;
    out += parts.run_id;
  }
  out += "}\n"sv;
}

void append_run_journal_line(std::string& out, const Event& e) { append_run_journal_line(out, e, EventLineParts(e)); }

std::string encode_run_journal_line(const Event& e) {
  std::string line;
  append_run_journal_line(line, e);
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
  e.set_data(std::move(*data));
  return e;
}

std::optional<Event> decode_run_journal_line(std::string_view line, uid_t owner) {
  auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return std::nullopt;
  const auto type = parsed.find("event");
  const auto seq = parsed.find("seq");
  const auto time = parsed.find("time");
  if (type == parsed.end() || !type->is_string() || seq == parsed.end() || !seq->is_number_unsigned() ||
      time == parsed.end() || !time->is_number())
    return std::nullopt;
  Event e;
  e.seq = seq->get<std::uint64_t>();
  e.time = time->get<double>();
  e.type = type->get<std::string>();
  if (const auto run_id = parsed.find("run_id"); run_id != parsed.end()) {
    if (!run_id->is_string()) return std::nullopt;
    e.run_id = run_id->get<std::string>();
  }
  e.owner = owner;
  for (const char* key : {"event", "seq", "time", "run_id"}) parsed.erase(key);
  e.set_data(std::move(parsed));
  return e;
}

namespace {
/// The JSON string (no escapes) at the start of `rest` after `key`; moves `rest` past it.
std::optional<std::string_view> plain_string_after(std::string_view& rest, std::string_view key) {
  if (rest.substr(0, key.size()) != key) return std::nullopt;
  rest.remove_prefix(key.size());
  const auto end = rest.find('"');
  if (end == std::string_view::npos) return std::nullopt;
  const std::string_view value = rest.substr(0, end);
  if (value.find('\\') != std::string_view::npos) return std::nullopt;
  rest.remove_prefix(end + 1);
  return value;
}
}  // namespace

std::optional<LineHead> head_of_event_line(std::string_view line) {
  if (!seq_of_line(line)) return std::nullopt;
  std::string_view rest = line.substr(kSeqPrefix.size());
  rest.remove_prefix(std::min(rest.size(), rest.find(',')));  // past the seq
  constexpr std::string_view kTime = ",\"time\":";
  if (rest.substr(0, kTime.size()) != kTime) return std::nullopt;
  const std::size_t time_end = std::min(rest.size(), rest.find(',', kTime.size()));
  const std::string_view time = rest.substr(kTime.size(), time_end - kTime.size());
  rest.remove_prefix(time_end);  // past the time
  const auto type = plain_string_after(rest, ",\"event\":\"");
  if (!type) return std::nullopt;
  const auto run_id = plain_string_after(rest, ",\"run_id\":\"");
  if (!run_id) return std::nullopt;
  return LineHead{*type, *run_id, time};
}

}  // namespace lpd::daemon
