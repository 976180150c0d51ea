// main() for lpd::shim_gtest_main: GoogleTest's own main plus the lpd listener,
// so enabling the shim is a one-word change of the linked library.
#include <gtest/gtest.h>

#include "lpd_shim_gtest.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  lpd::shim::install_gtest_listener();
  return RUN_ALL_TESTS();
}
