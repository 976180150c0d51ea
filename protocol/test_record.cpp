#include "protocol/test_record.h"

#include <charconv>
#include <cmath>

#include "protocol/json_text.h"

namespace lpd::protocol {
namespace {

constexpr std::string_view kStartHead = R"({"op":"test.start","nodeid":")";
constexpr std::string_view kFinishHead = R"({"op":"test.finish","nodeid":")";
constexpr std::string_view kStartTail = R"("})";
constexpr std::string_view kPassedMiddle = R"(","outcome":"passed","phase":"call","duration":)";
constexpr std::string_view kPassedTail = R"(,"message":""})";

/// Moves `rest` past `prefix` when it starts with it.
bool consume(std::string_view& rest, std::string_view prefix) {
  if (!rest.starts_with(prefix)) return false;
  rest.remove_prefix(prefix.size());
  return true;
}

}  // namespace

std::optional<TestRecord> parse_test_record(std::string_view line) {
  TestRecord record;
  std::string_view rest = line;
  if (consume(rest, kStartHead)) {
    record.kind = TestRecord::Kind::kStart;
  } else if (consume(rest, kFinishHead)) {
    record.kind = TestRecord::Kind::kPassed;
  } else {
    return std::nullopt;
  }
  // The nodeid runs to the first byte a plain JSON string may not hold: it
  // must be the closing quote (an escape or a byte past ASCII: not ours).
  const std::size_t length = plain_json_prefix(rest);
  if (length == rest.size() || rest[length] != '"') return std::nullopt;
  record.nodeid = rest.substr(0, length);
  rest.remove_prefix(length);
  if (record.kind == TestRecord::Kind::kStart) {
    if (rest != kStartTail) return std::nullopt;
    return record;
  }
  if (!consume(rest, kPassedMiddle)) return std::nullopt;
  const std::size_t number = json_number_prefix(rest);
  if (number == 0 || rest.substr(number) != kPassedTail) return std::nullopt;
  double duration = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + number, duration);
  if (ec != std::errc() || end != rest.data() + number || !std::isfinite(duration)) return std::nullopt;
  record.duration = duration;
  return record;
}

}  // namespace lpd::protocol
