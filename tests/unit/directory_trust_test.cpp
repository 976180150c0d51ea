#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "daemon/core/directory_trust.h"

using lpd::daemon::directory_distrust;

TEST_CASE("a directory of ours or root's that nobody else may write is trusted", "[directory_trust]") {
  CHECK_FALSE(directory_distrust(1000, S_IFDIR | 0700, 1000, false));
  CHECK_FALSE(directory_distrust(1000, S_IFDIR | 0755, 1000, false));
  CHECK_FALSE(directory_distrust(0, S_IFDIR | 0711, 1000, false));
  CHECK_FALSE(directory_distrust(0, S_IFDIR | 0755, 0, false));
}

TEST_CASE("another user's directory is never trusted, whatever its mode", "[directory_trust]") {
  CHECK(directory_distrust(1002, S_IFDIR | 0700, 1000, false));
  CHECK(directory_distrust(1002, S_IFDIR | 0777, 1000, true));
  CHECK(directory_distrust(1002, S_IFDIR | 01777, 1000, true));
  CHECK(directory_distrust(1000, S_IFDIR | 0700, 0, false));  // root's lpd in a user's directory
}

TEST_CASE("a directory others may write is trusted only as root's sticky one, when allowed", "[directory_trust]") {
  CHECK(directory_distrust(1000, S_IFDIR | 0770, 1000, false));
  CHECK(directory_distrust(1000, S_IFDIR | 0702, 1000, true));
  CHECK(directory_distrust(1000, S_IFDIR | 01777, 1000, true));  // its owner may replace others' entries
  CHECK(directory_distrust(0, S_IFDIR | 01777, 1000, false));    // the state directory never
  CHECK(directory_distrust(0, S_IFDIR | 0777, 1000, true));      // not sticky
  CHECK_FALSE(directory_distrust(0, S_IFDIR | 01777, 1000, true));  // /tmp for an explicit --socket
}
