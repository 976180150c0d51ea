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
