#include <catch2/catch.hpp>

#include "daemon/processes/process_name.h"
#include "protocol/error.h"

using namespace lpd::daemon;

TEST_CASE("process names that are safe file names are accepted") {
  for (const char* name : {"db", "a", "0", "web-1", "redis_6379", "x.y", "A9._-"}) CHECK(is_valid_process_name(name));
  CHECK(is_valid_process_name(std::string(64, 'n')));
}

TEST_CASE("process names that could escape the state directory are refused") {
  for (const char* name : {"", "../x", "..", ".hidden", "-rf", "_x", "a/b", "a b", "a\nb", "é"})
    CHECK_FALSE(is_valid_process_name(name));
  CHECK_FALSE(is_valid_process_name(std::string(65, 'n')));
  try {
    require_valid_process_name("../x");
    FAIL("no error");
  } catch (const lpd::protocol::Error& e) {
    CHECK(e.code() == lpd::protocol::ErrorCode::kBadRequest);
    CHECK(std::string(e.what()).find("\"../x\"") != std::string::npos);
  }
}
