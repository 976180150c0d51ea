#include <catch2/catch.hpp>

#include "daemon/process/pattern.h"
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
