// `lpd stop`: who may stop which daemon (issue 18, h18try).
#include <catch2/catch.hpp>

#include "daemon/host/stop_rules.h"

using lpd::daemon::decide_stop;
using nlohmann::json;

namespace {
json daemon_status(long long pid, unsigned uid, bool socket_activated = false) {
  return {{"pid", pid}, {"uid", uid}, {"socket_activated", socket_activated}, {"state_dir", "/var/lib/lpd"}};
}
}  // namespace

TEST_CASE("the daemon's own user and root may stop it, as kill(2) allows", "[stop]") {
  auto own = decide_stop(daemon_status(4242, 1000), 1000, "/tmp/lpd-1000/lpd.sock");
  CHECK(own.allowed);
  CHECK(own.pid == 4242);
  CHECK(own.refusal.empty());
  CHECK(decide_stop(daemon_status(4242, 1000), 0, "/s").allowed);
  CHECK(decide_stop(daemon_status(4242, 0), 0, "/s").allowed);
}

TEST_CASE("another user may not stop it, and is told whose it is", "[stop]") {
  auto other = decide_stop(daemon_status(4242, 0), 1001, "/run/lpd/lpd.sock");
  CHECK_FALSE(other.allowed);
  CHECK(other.refusal.find("permission denied") != std::string::npos);
  CHECK(other.refusal.find("pid 4242") != std::string::npos);
  CHECK(other.refusal.find("uid 0") != std::string::npos);
  CHECK(other.refusal.find("/run/lpd/lpd.sock") != std::string::npos);
  CHECK_FALSE(decide_stop(daemon_status(4242, 1000), 1001, "/s").allowed);
}

TEST_CASE("a socket-activated daemon is left to systemctl, even for root", "[stop]") {
  auto activated = decide_stop(daemon_status(4242, 0, true), 0, "/run/lpd/lpd.sock");
  CHECK_FALSE(activated.allowed);
  CHECK(activated.refusal.find("systemctl stop lpd.socket lpd.service") != std::string::npos);
}

TEST_CASE("a reply without a usable pid or uid is never signalled", "[stop]") {
  CHECK_FALSE(decide_stop(json::object(), 0, "/s").allowed);
  CHECK_FALSE(decide_stop(json::array(), 0, "/s").allowed);
  CHECK_FALSE(decide_stop(daemon_status(1, 0), 0, "/s").allowed);  // init
  CHECK_FALSE(decide_stop(daemon_status(0, 0), 0, "/s").allowed);
  CHECK_FALSE(decide_stop(daemon_status(-5, 0), 0, "/s").allowed);
  CHECK_FALSE(decide_stop({{"pid", "4242"}, {"uid", 0}}, 0, "/s").allowed);
  CHECK_FALSE(decide_stop({{"pid", 4242}, {"uid", -1}}, 0, "/s").allowed);
  CHECK_FALSE(decide_stop({{"pid", 4242}}, 0, "/s").allowed);
}
