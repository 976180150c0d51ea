// The C ABI when no daemon is configured: every call returns at once, and
// out-parameters are always set.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "lpd_shim.h"
#include "lpd_shim.hpp"

TEST_CASE("without LPD_SOCKET every call is a no-op that says so", "[shim][c_api]") {
  ::unsetenv("LPD_SOCKET");
  ::unsetenv("LPD_CHECKPOINT_MOCK");
  CHECK(lpd_shim_connect_from_env() == LPD_SHIM_DISABLED);
  CHECK(lpd_shim_is_connected() == 0);
  CHECK(lpd_shim_test_started("A.B") == LPD_SHIM_DISABLED);
  CHECK(lpd_shim_test_finished("A.B", LPD_SHIM_PASSED, 0.1, nullptr) == LPD_SHIM_DISABLED);
  int result = 7, outcome = 7;
  char* reason = reinterpret_cast<char*>(1);
  CHECK(lpd_shim_checkpoint("task", 1, &result, &reason, &outcome) == LPD_SHIM_DISABLED);
  CHECK(result == LPD_SHIM_RESULT_NONE);
  CHECK(outcome == LPD_SHIM_OUTCOME_NOT_PAUSED);
  CHECK(reason == nullptr);
  char* failure = reinterpret_cast<char*>(1);
  CHECK(lpd_shim_pause_on_failure(nullptr, "boom", 1, &failure, nullptr) == LPD_SHIM_DISABLED);
  CHECK(failure == nullptr);
  CHECK(lpd_shim_run_id(nullptr, 0) == 0);
  CHECK(lpd_shim_install_crash_handler() == LPD_SHIM_OK);
  CHECK(lpd_shim_install_crash_handler() == LPD_SHIM_OK);  // idempotent
  CHECK(std::string(lpd_shim_status_name(LPD_SHIM_UNAVAILABLE)) == "unavailable");
  CHECK(lpd::shim::checkpoint("x").status == LPD_SHIM_DISABLED);
  lpd_shim_string_free(nullptr);
}

TEST_CASE("an explicit path to no daemon is unavailable, with the path in the error", "[shim][c_api]") {
  CHECK(lpd_shim_connect("/nonexistent/lpd.sock", nullptr) == LPD_SHIM_UNAVAILABLE);
  CHECK(std::string(lpd_shim_last_error()).find("/nonexistent/lpd.sock") != std::string::npos);
  CHECK(lpd_shim_test_finished("A.B", 42, 0, nullptr) == LPD_SHIM_INVALID_ARGUMENT);
  CHECK(lpd_shim_close() == LPD_SHIM_OK);
  CHECK(lpd_shim_test_started("A.B") == LPD_SHIM_DISABLED);  // closed
}

// h18docs: the adapters print the pause id before they block, so they choose it.
TEST_CASE("a caller-chosen pause id: new ids are 16 hex digits, bad ones are refused", "[shim][c_api]") {
  char buf[17];
  REQUIRE(lpd_shim_new_pause_id(buf, sizeof(buf)) == 16);
  const std::string id(buf);
  CHECK(id.size() == 16);
  CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(lpd::shim::new_pause_id() != id);
  char small[5];
  CHECK(lpd_shim_new_pause_id(small, sizeof(small)) == 16);
  CHECK(std::string(small).size() == 4);  // truncated, still terminated
  CHECK(lpd_shim_new_pause_id(nullptr, 0) == 16);

  char* failure = reinterpret_cast<char*>(1);
  int outcome = 7;
  CHECK(lpd_shim_pause_on_failure_as("../x", nullptr, "boom", 1, &failure, &outcome) == LPD_SHIM_INVALID_ARGUMENT);
  CHECK(std::string(lpd_shim_last_error()).find("pause_id") != std::string::npos);
  CHECK(failure == nullptr);
  CHECK(outcome == LPD_SHIM_OUTCOME_NOT_PAUSED);
  CHECK(lpd_shim_pause_on_failure_as(std::string(65, 'a').c_str(), nullptr, "boom", 1, nullptr, nullptr) ==
        LPD_SHIM_INVALID_ARGUMENT);
  // A valid id goes on to the usual checks (closed or disabled here: nothing paused).
  CHECK(lpd_shim_pause_on_failure_as(id.c_str(), nullptr, "boom", 1, nullptr, nullptr) == LPD_SHIM_DISABLED);
}
