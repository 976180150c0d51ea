#include <catch2/catch.hpp>

#include "daemon/access.h"
#include "protocol/error.h"

using namespace lpd::daemon;

TEST_CASE("owners, root and admin-group members may act; others get permission_denied") {
  Peer owner;
  owner.uid = 1000;
  Peer other;
  other.uid = 1001;
  other.gid = 1001;
  other.groups = {1001, 50};
  Peer root;
  root.uid = 0;
  AccessPolicy none;
  AccessPolicy admins{50};
  CHECK(may_act_on(owner, 1000, none));
  CHECK(may_act_on(root, 1000, none));
  CHECK_FALSE(may_act_on(other, 1000, none));
  CHECK(may_act_on(other, 1000, admins));
  try {
    require_may_act(other, 1000, "pause abc", none);
    FAIL("must refuse");
  } catch (const lpd::protocol::Error& e) {
    CHECK(e.code() == lpd::protocol::ErrorCode::kPermissionDenied);
    CHECK(std::string(e.what()) == "pause abc belongs to uid 1000; uid 1001 may not act on it");
  }
}
