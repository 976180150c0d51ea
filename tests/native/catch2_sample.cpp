// A Catch2 binary using the lpd adapter, for tests/e2e/test_native_shim.py.
// Each behaviour is its own test case, selected by name on the command line.
#include <cstdio>
#include <cstdlib>

#include "lpd_shim_catch2.hpp"  // includes catch.hpp with listener support

CATCH_REGISTER_LISTENER(LpdShimCatch2Listener)

namespace {

// A real SIGSEGV even in the sanitizer build: UBSan would otherwise report the
// null store itself and exit(1) before the fault happens.
__attribute__((noinline, no_sanitize("null"))) void store_through(volatile int* p) { *p = 42; }
}  // namespace

TEST_CASE("CatchPasses") { CHECK(6 * 7 == 42); }

TEST_CASE("CatchFails") {
  const int answer = 6 * 7;
  CHECK(answer == 41);
  std::printf("CATCH-FAILS-BODY-CONTINUED\n");
}

TEST_CASE("CatchNullDeref") {
  volatile int* volatile p = nullptr;  // volatile twice: neither the pointer nor the store can be optimised away
  store_through(p);
}

TEST_CASE("CatchAbort") { std::abort(); }

TEST_CASE("CatchCheckpoint") {
  const lpd::shim::Decision d = lpd::shim::checkpoint("approve catch2", 120);
  std::printf("CHECKPOINT result=%s reason='%s' status=%s\n", !d.result ? "none" : *d.result ? "true" : "false",
              d.reason.c_str(), lpd_shim_status_name(d.status));
}
