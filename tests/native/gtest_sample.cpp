// A GoogleTest binary using the lpd adapter, for tests/e2e/test_native_shim.py.
// Each behaviour is its own test, selected with --gtest_filter.
#include <cstdio>
#include <cstdlib>

#include <gtest/gtest.h>

#include "lpd_shim_gtest.hpp"

namespace {

// A real SIGSEGV even in the sanitizer build: UBSan would otherwise report the
// null store itself and exit(1) before the fault happens.
__attribute__((noinline, no_sanitize("null"))) void store_through(volatile int* p) { *p = 42; }

const char* result_text(const std::optional<bool>& r) {
  if (!r) return "none";
  return *r ? "true" : "false";
}

}  // namespace

TEST(Sample, Passes) { EXPECT_EQ(6 * 7, 42); }

TEST(Sample, AlsoPasses) { SUCCEED(); }

TEST(Sample, Fails) {
  const int answer = 6 * 7;
  EXPECT_EQ(answer, 41) << "wrong answer";
  std::printf("SAMPLE-FAILS-BODY-CONTINUED\n");  // a failure pause returns into the body
}

TEST(CrashTest, NullDeref) {
  volatile int* volatile p = nullptr;  // volatile twice: neither the pointer nor the store can be optimised away
  store_through(p);
}

TEST(CrashTest, Abort) { std::abort(); }

TEST(CheckpointTest, AsksAHuman) {
  const lpd::shim::Decision d = lpd::shim::checkpoint("approve native", 120);
  std::printf("CHECKPOINT result=%s reason='%s' status=%s\n", result_text(d.result), d.reason.c_str(),
              lpd_shim_status_name(d.status));
}

TEST(DeathTest, ExpectedDeathIsNotACrash) {
  EXPECT_DEATH(std::abort(), "");
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  lpd::shim::install_gtest_listener();
  return RUN_ALL_TESTS();
}
