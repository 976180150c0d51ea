// JSON escaping done at test start and the crash line the signal handler
// formats from it.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "shim/native/src/crash_line.h"

using nlohmann::json;
using lpd::shim::format_crash_line;
using lpd::shim::json_escape_into;

namespace {

std::string escaped(std::string_view text, std::size_t capacity = 256) {
  std::string out(capacity, '\0');
  const std::size_t n = json_escape_into(text, out.data(), capacity);
  REQUIRE(out[n] == '\0');
  out.resize(n);
  return out;
}

/// What a JSON parser reads back from the escaped text.
std::string round_trip(std::string_view text) {
  return json::parse("\"" + escaped(text) + "\"").get<std::string>();
}

std::string crash_line(int sig, std::string_view nodeid, std::size_t capacity = 512) {
  const std::string e = escaped(nodeid);
  std::string out(capacity, '\0');
  out.resize(format_crash_line(sig, e.data(), e.size(), out.data(), capacity));
  return out;
}

}  // namespace

TEST_CASE("plain ids are copied as they are", "[shim][crash]") {
  CHECK(escaped("CrashTest.NullDeref") == "CrashTest.NullDeref");
  CHECK(escaped("Param/Suite.Test/0") == "Param/Suite.Test/0");
  CHECK(escaped("") == "");
}

TEST_CASE("quotes, backslashes and control characters are escaped", "[shim][crash]") {
  CHECK(escaped("a\"b") == "a\\\"b");
  CHECK(escaped("a\\b") == "a\\\\b");
  CHECK(escaped("a\nb\tc\r") == "a\\nb\\tc\\r");
  CHECK(escaped(std::string_view("\x01\x1f\x7f", 3)) == "\\u0001\\u001f\\u007f");
  CHECK(escaped(std::string_view("a\0b", 3)) == "a\\u0000b");
  const std::string tricky = std::string("q\"\\\n\x02 z", 7);
  CHECK(round_trip(tricky) == tricky);
}

TEST_CASE("UTF-8 passes through and invalid bytes become U+FFFD", "[shim][crash]") {
  CHECK(round_trip("Größe.Ünïcode✓") == "Größe.Ünïcode✓");
  CHECK(round_trip("a\xff" "b") == "a\xef\xbf\xbd" "b");
  CHECK(round_trip("\xc3") == "\xef\xbf\xbd");              // truncated sequence
  CHECK(round_trip("\xe0\x80\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // overlong
  CHECK(round_trip("\xed\xa0\x80").find("\xef\xbf\xbd") == 0);  // surrogate
}

TEST_CASE("escaping stops before a character that does not fit", "[shim][crash]") {
  CHECK(escaped("abcdef", 4) == "abc");
  CHECK(escaped("ab\"", 4) == "ab");       // the two-byte escape would not fit
  CHECK(escaped("a\xc3\xa9", 3) == "a");   // nor would half of é
  char one[1];
  CHECK(json_escape_into("abc", one, 1) == 0);
  CHECK(one[0] == '\0');
}

TEST_CASE("the crash line is one JSON object on its own line", "[shim][crash]") {
  const std::string line = crash_line(11, "Suite.Test \"quoted\"");
  REQUIRE(line.size() > 2);
  CHECK(line.front() == '\n');
  CHECK(line.back() == '\n');
  const json j = json::parse(line.substr(1));
  CHECK(j == json{{"op", "crash.notice"}, {"signal", 11}, {"nodeid", "Suite.Test \"quoted\""}});
  CHECK(json::parse(crash_line(6, ""))["signal"] == 6);
  CHECK(json::parse(crash_line(0, "x"))["signal"] == 0);
  CHECK(json::parse(crash_line(123, "x"))["signal"] == 123);
}

TEST_CASE("a crash line that does not fit is not written at all", "[shim][crash]") {
  CHECK(crash_line(11, "Suite.Test", 20).empty());
  const std::size_t full = crash_line(11, "Suite.Test").size();
  CHECK(crash_line(11, "Suite.Test", full).size() == full);
  CHECK(crash_line(11, "Suite.Test", full - 1).empty());
}
