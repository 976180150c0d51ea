#include <catch2/catch.hpp>

#include "daemon/logs/pattern.h"
#include "protocol/error.h"

using namespace lpd::daemon;

TEST_CASE("patterns search anywhere in a line, in Perl/Python syntax") {
  CHECK(Pattern::compile("ready").matches("server is ready to accept"));
  CHECK_FALSE(Pattern::compile("^ready").matches("server is ready"));
  CHECK(Pattern::compile(R"(listening on port \d+)").matches("INFO listening on port 8080"));
  CHECK(Pattern::compile(R"((?P<port>\d+) ready)").matches("8080 ready"));  // Python's named groups
  CHECK(Pattern::compile(R"((?P<word>ab)-(?P=word))").matches("ab-ab"));
  CHECK_FALSE(Pattern::compile(R"((?P<word>ab)-(?P=word))").matches("ab-ac"));
  CHECK(Pattern::compile(R"(\(\?P<x\))").matches("(?P<x)"));  // escaped: not a group
  CHECK(Pattern::compile(R"([(?P<]+x)").matches("?P<x"));  // inside a class: not a group
  CHECK(Pattern::compile(R"((?i)READY)").matches("ready"));
  CHECK(Pattern::compile(R"(a(?=b))").matches("ab"));
}

TEST_CASE("a bad pattern is a bad_request that says where") {
  for (const char* bad : {"ready(", "[a-", "*x", "(?P<n>"}) {
    try {
      Pattern::compile(bad);
      FAIL("compiled " << bad);
    } catch (const lpd::protocol::Error& e) {
      CHECK(e.code() == lpd::protocol::ErrorCode::kBadRequest);
      CHECK(std::string(e.what()).find("invalid pattern") != std::string::npos);
    }
  }
  CHECK_THROWS_AS(Pattern::compile(""), lpd::protocol::Error);
}

// -- issue 14 (x14names): patterns and lines are Unicode text ----------------

TEST_CASE("a pattern matches non-ASCII text as characters, as Python's re does on str") {
  CHECK(Pattern::compile("pr.t").matches("serveur prêt"));
  CHECK(Pattern::compile(R"(^\w+$)").matches("prêt"));
  CHECK(Pattern::compile(R"(^\w{4}$)").matches("prêt"));  // four characters, five bytes
  CHECK(Pattern::compile("(?i)PRÊT").matches("prêt"));
  CHECK(Pattern::compile("готов").matches("сервер готов"));
  CHECK(Pattern::compile(R"(^.$)").matches("🚀"));  // one character outside the BMP
  CHECK(Pattern::compile(R"(\d+)").matches("port ٣"));  // Unicode digits, as Python
  CHECK_FALSE(Pattern::compile("pr.t").matches("prt"));
}

TEST_CASE("lines that are not valid UTF-8 are matched with U+FFFD in place, never thrown on") {
  CHECK(Pattern::compile("ready").matches(std::string("\xff\xfe ready \xc3")));
  CHECK(Pattern::compile(R"(a.b)").matches(std::string("a\xff" "b")));  // one bad byte, one character
  CHECK(Pattern::compile("\xEF\xBF\xBD").matches(std::string("x\x80y")));
  CHECK(decode_utf8_lossy("pr\xc3\xaat") == U"prêt");
  CHECK(decode_utf8_lossy(std::string("\xc0\xaf")) == U"\uFFFD\uFFFD");         // overlong '/'
  CHECK(decode_utf8_lossy(std::string("\xed\xa0\x80")) == U"\uFFFD\uFFFD\uFFFD");  // a surrogate
  CHECK(decode_utf8_lossy(std::string("\xf4\x90\x80\x80")).size() == 4);        // above U+10FFFF
  CHECK(decode_utf8_lossy(std::string("\xe2\x82")) == U"\uFFFD\uFFFD");           // cut short
  CHECK(decode_utf8_lossy(std::string("a\0b", 3)) == std::u32string(U"a\0b", 3));
}
