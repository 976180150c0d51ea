#include "daemon/history/ring_mark.h"

#include <algorithm>
#include <charconv>

namespace lpd::daemon {

namespace {

constexpr std::string_view kHead = "{\"event\":\"lpd.ring_read\",\"ring\":\"";

/// The unsigned decimal at the start of `text` (advanced past it), or nullopt.
std::optional<std::uint64_t> take_number(std::string_view& text) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end == text.data()) return std::nullopt;
  text.remove_prefix(static_cast<std::size_t>(end - text.data()));
  return value;
}

bool take(std::string_view& text, std::string_view literal) {
  if (!text.starts_with(literal)) return false;
  text.remove_prefix(literal.size());
  return true;
}

}  // namespace

void append_ring_mark_line(std::string& out, const RingMark& mark) {
  char hex[17];
  constexpr char kDigits[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) hex[i] = kDigits[(mark.ring_id >> (60 - 4 * i)) & 0xf];
  hex[16] = '\0';
  out += kHead;
  out.append(hex, 16);
  out += "\",\"to\":";
  out += std::to_string(mark.read_to);
  out += ",\"batch\":";
  out += std::to_string(mark.batch);
  out += "}\n";
}

// Only the exact shape lpd writes: these lines are found by their prefix,
// and a line that merely mentions ring_read (an event's data) never starts so.
std::optional<RingMark> parse_ring_mark(std::string_view line) {
  if (!take(line, kHead) || line.size() < 16) return std::nullopt;
  RingMark mark;
  const auto [end, error] = std::from_chars(line.data(), line.data() + 16, mark.ring_id, 16);
  if (error != std::errc{} || end != line.data() + 16) return std::nullopt;
  line.remove_prefix(16);
  if (!take(line, "\",\"to\":")) return std::nullopt;
  const auto to = take_number(line);
  if (!to || !take(line, ",\"batch\":")) return std::nullopt;
  const auto batch = take_number(line);
  if (!batch || line != "}") return std::nullopt;
  mark.read_to = *to;
  mark.batch = *batch;
  return mark;
}

bool LastBatchMarks::feed(std::string_view line) {
  const auto mark = parse_ring_mark(line);
  if (!mark) return true;  // an event, or a torn tail: earlier lines may still hold marks
  if (batch_ && *batch_ != mark->batch) return false;
  batch_ = mark->batch;
  auto& to = marks_[mark->ring_id];
  to = std::max(to, mark->read_to);
  return true;
}

}  // namespace lpd::daemon
