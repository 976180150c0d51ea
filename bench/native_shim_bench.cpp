// Per-test cost of lpd's GoogleTest adapter: 100,000 empty tests (one TEST_P
// instantiated over a range), timed around RUN_ALL_TESTS. Built twice by
// shim/CMakeLists.txt (-DLPD_BUILD_BENCH=ON): native_shim_bench_plain without
// the adapter, native_shim_bench_shim with it. bench/native_shim_bench.py
// runs both, with and without a daemon. Prints "tests=N total_ms=T ns_per_test=X"
// on stderr.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <gtest/gtest.h>

#ifdef LPD_BENCH_WITH_SHIM
#include "lpd_shim_gtest.hpp"
#endif

#ifndef LPD_BENCH_TESTS
#define LPD_BENCH_TESTS 100000
#endif

class Empty : public ::testing::TestWithParam<int> {};

TEST_P(Empty, Test) {}

INSTANTIATE_TEST_SUITE_P(Many, Empty, ::testing::Range(0, LPD_BENCH_TESTS));

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
#ifdef LPD_BENCH_WITH_SHIM
  lpd::shim::install_gtest_listener();
#endif
  const auto start = std::chrono::steady_clock::now();
  const int rc = RUN_ALL_TESTS();
  const auto took = std::chrono::steady_clock::now() - start;
  const double ns = std::chrono::duration<double, std::nano>(took).count();
  const int tests = ::testing::UnitTest::GetInstance()->test_to_run_count();
  std::fprintf(stderr, "tests=%d total_ms=%.1f ns_per_test=%.0f\n", tests, ns / 1e6, tests ? ns / tests : 0.0);
  return rc;
}
