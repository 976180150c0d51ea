// A plain GoogleTest binary, no lpd listener: lpd hears nothing from it but
// how it ended. For tests/e2e/test_run_outcomes.py.
#include <gtest/gtest.h>

namespace {
// A real SIGSEGV even in the sanitizer build (see tests/native/gtest_sample.cpp).
__attribute__((noinline, no_sanitize("null"))) void store_through(volatile int* p) { *p = 42; }
}  // namespace

TEST(Plain, Passes) { EXPECT_EQ(2 + 2, 4); }

TEST(Plain, Fails) { EXPECT_EQ(2 + 2, 5); }

TEST(Plain, Crashes) {
  volatile int* volatile p = nullptr;
  store_through(p);
}
