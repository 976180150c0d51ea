#include <catch2/catch.hpp>

#include "daemon/core/bounded_field.h"
#include "daemon/runs/run.h"
#include "protocol/error.h"

using namespace lpd::daemon;
using lpd::protocol::Error;
using lpd::protocol::ErrorCode;

TEST_CASE("a record's text field is kept whole up to its bound, then cut with a note", "[bounded_field]") {
  CHECK(bounded_text("", 4) == "");
  CHECK(bounded_text("abcd", 4) == "abcd");
  CHECK(bounded_text("abcde", 4) == "abcd ... (5 bytes, not kept)");
  // Never inside a character: "é" is two bytes, cut after its first.
  CHECK(bounded_text("abc\xc3\xa9xyz", 4) == "abc ... (8 bytes, not kept)");
  CHECK(bounded_text("ab\xe2\x82\xac", 4) == "ab ... (5 bytes, not kept)");
  CHECK(bounded_text("\xe2\x82\xac" "b", 3) == "\xe2\x82\xac ... (4 bytes, not kept)");
}

TEST_CASE("a request's cwd longer than PATH_MAX is refused, naming its size", "[bounded_field]") {
  CHECK_NOTHROW(check_cwd_length("/" + std::string(kMaxCwdBytes - 1, 'd')));
  try {
    check_cwd_length("/" + std::string(kMaxCwdBytes, 'd'));
    FAIL("a cwd past PATH_MAX was taken");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kBadRequest);
    CHECK(std::string(e.what()) == "field \"cwd\" is 4096 bytes long; a path may have at most 4095 (PATH_MAX)");
  }
}

TEST_CASE("a helper's argv over its bound is refused, counting each argument with its NUL", "[bounded_field]") {
  CHECK_NOTHROW(check_argv_size({"ab", "c"}, 5, "a helper's"));
  try {
    check_argv_size({"ab", "cd"}, 5, "a helper's");
    FAIL("an argv past the bound was taken");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kBadRequest);
    CHECK(std::string(e.what()) == "field \"argv\" is 6 bytes; a helper's arguments may have at most 5");
  }
}

TEST_CASE("a run restored from a record written whole keeps bounded fields", "[bounded_field]") {
  nlohmann::json record = {{"run_id", "r1"},
                           {"hostname", std::string(1000, 'h')},
                           {"cwd", "/" + std::string(1 << 20, 'c')},
                           {"argv", std::vector<std::string>(100, std::string(4096, 'a'))},
                           {"status", "ended"}};
  const Run run = Run::from_json(record);
  CHECK(run.hostname.size() < kMaxHostnameBytes + 40);
  CHECK(run.cwd.size() < kMaxCwdBytes + 40);
  CHECK(run.cwd.find("(1048577 bytes, not kept)") != std::string::npos);
  std::size_t argv_bytes = 0;
  for (const auto& arg : run.argv) argv_bytes += arg.size() + 1;
  CHECK(argv_bytes <= kMaxArgvBytes + 64);
  CHECK(run.to_json().dump().size() < 128 * 1024);
}
