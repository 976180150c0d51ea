// Issue 14 (x14names): leases on helpers and the kill rule around them, and
// which logs a new start keeps.

#include <catch2/catch.hpp>

#include "daemon/logs/log_file.h"
#include "daemon/processes/process_lease.h"

using namespace lpd::daemon;

namespace {
const ProcessKey kDb{1000, "/p", "db"};
}  // namespace

TEST_CASE("a lease counts from the ensure and ends with the connection") {
  Leases leases;
  leases.wait(kDb, 1);
  CHECK(leases.holders(kDb, 7) == 1);  // waiting holds: the start is for it
  leases.settle(kDb, 1, 7, true);
  leases.wait(kDb, 2);
  leases.settle(kDb, 2, 7, true);
  leases.wait(kDb, 2);  // a second lease ensure on one connection holds once
  leases.settle(kDb, 2, 7, true);
  CHECK(leases.holders(kDb, 7) == 2);
  CHECK(leases.holds(kDb, 1));
  CHECK(leases.peer_gone(1) == std::vector<ProcessKey>{kDb});
  CHECK(leases.holders(kDb, 7) == 1);
  CHECK(leases.release(kDb, 2));
  CHECK_FALSE(leases.release(kDb, 2));
  CHECK(leases.holders(kDb, 7) == 0);
  CHECK(leases.peer_gone(3).empty());
}

TEST_CASE("a connection gone before the helper was ready holds nothing") {
  Leases leases;
  leases.wait(kDb, 1);
  leases.peer_gone(1);
  leases.settle(kDb, 1, 7, true);
  CHECK(leases.holders(kDb, 7) == 0);
  CHECK_FALSE(leases.holds(kDb, 1));
}

TEST_CASE("a failed start leaves no hold, and holds of an ended incarnation do not count") {
  Leases leases;
  leases.wait(kDb, 1);
  leases.settle(kDb, 1, 7, false);
  CHECK(leases.holders(kDb, 7) == 0);
  leases.wait(kDb, 1);
  leases.settle(kDb, 1, 7, true);
  leases.wait(kDb, 2);  // waiting for the next start
  leases.ended(kDb);
  CHECK_FALSE(leases.holds(kDb, 1));
  CHECK(leases.holders(kDb, 8) == 1);
  leases.settle(kDb, 2, 8, true);
  CHECK(leases.holders(kDb, 8) == 1);
  CHECK(leases.holders(kDb, 7) == 0);
}

TEST_CASE("one holder's kill only lets go while others hold; force and non-holders kill") {
  CHECK(kill_verdict(false, true, 3) == KillVerdict::kReleaseOnly);
  CHECK(kill_verdict(false, true, 1) == KillVerdict::kKill);   // the last holder
  CHECK(kill_verdict(false, false, 3) == KillVerdict::kKill);  // a shell, root: as before leases
  CHECK(kill_verdict(true, true, 3) == KillVerdict::kKill);
}

TEST_CASE("each start gets a new log and only the newest keep_logs stay") {
  auto r = rotate_logs({}, "/s/logs/db.u1.1.log", 5);
  CHECK(r.kept == std::vector<std::string>{"/s/logs/db.u1.1.log"});
  CHECK(r.removed.empty());
  std::vector<std::string> kept;
  for (int n = 1; n <= 7; ++n) kept = rotate_logs(kept, "/s/logs/db.u1." + std::to_string(n) + ".log", 5).kept;
  CHECK(kept == std::vector<std::string>{"/s/logs/db.u1.7.log", "/s/logs/db.u1.6.log", "/s/logs/db.u1.5.log",
                                         "/s/logs/db.u1.4.log", "/s/logs/db.u1.3.log"});
  r = rotate_logs(kept, "/s/logs/db.u1.8.log", 2);
  CHECK(r.kept == std::vector<std::string>{"/s/logs/db.u1.8.log", "/s/logs/db.u1.7.log"});
  CHECK(r.removed.size() == 4);
  CHECK(rotate_logs({"a"}, "b", 0).kept == std::vector<std::string>{"b"});  // at least the current one
  CHECK(rotate_logs({"b", "a"}, "b", 5).kept == std::vector<std::string>{"b", "a"});
}

TEST_CASE("only a helper's own logs can be removed, whatever its record claims") {
  CHECK(is_log_of("/s/logs/db.u1.3.log", "/s/logs", "db.u1"));
  CHECK_FALSE(is_log_of("/s/logs/db.u1.log", "/s/logs", "db.u1"));
  CHECK_FALSE(is_log_of("/s/logs/db.u1.3.log", "/s/logs", "db.u2"));
  CHECK_FALSE(is_log_of("/s/logs/db.u1.x.log", "/s/logs", "db.u1"));
  CHECK_FALSE(is_log_of("/etc/passwd", "/s/logs", "db.u1"));
  CHECK_FALSE(is_log_of("/s/logs/../db.u1.3.log", "/s/logs", "db.u1"));
  CHECK_FALSE(is_log_of("/s/logs/sub/db.u1.3.log", "/s/logs", "db.u1"));
  CHECK_FALSE(is_log_of("/s/logsx/db.u1.3.log", "/s/logs", "db.u1"));
  CHECK_FALSE(is_log_of("/s/logs/db.u1.3.log.1", "/s/logs", "db.u1"));
}
