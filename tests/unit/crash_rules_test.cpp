// The crash records of deaths no test process's activity explains
// (daemon/crashes/crash_rules.h), and when a death is one recorded before.
#include <csignal>

#include <catch2/catch.hpp>

#include "daemon/crashes/crash_rules.h"

using namespace lpd::daemon;

TEST_CASE("a death is the same as a recorded one by pid and attempt; an unknown pid is nobody", "[crash]") {
  Crash recorded;
  recorded.pid = 900;
  recorded.attempt = 2;
  CHECK(same_death(recorded, 2, 900));
  CHECK_FALSE(same_death(recorded, 1, 900));  // a retry's process may get the pid again
  CHECK_FALSE(same_death(recorded, 2, 901));
  recorded.pid = 0;
  CHECK_FALSE(same_death(recorded, 2, 0));
}

TEST_CASE("a command that reported no tests: its crash is its one testcase's", "[crash]") {
  const Crash c = command_crash("run-1", "sh", 77, SIGKILL, 1, 1000, 10.0, 12.5);
  CHECK(c.run_id == "run-1");
  CHECK(c.nodeid == "sh");
  CHECK(c.where == "command");
  CHECK(c.worker_id == "command");
  CHECK(c.pid == 77);
  CHECK(c.signal == SIGKILL);
  CHECK_FALSE(c.exit_code);
  CHECK(c.reason == "killed by SIGKILL (the command reported no tests)");
  CHECK(c.crash_time == 12.5);
  CHECK(c.duration == 2.5);
  CHECK(c.attempt == 1);
  CHECK(c.owner == 1000);
}

TEST_CASE("a command dead while lpd was restarting: pinned on no test, said so", "[crash]") {
  const Crash c = unattributed_command_crash("run-1", 78, SIGSEGV, 3, 1000, 20.0);
  CHECK(c.nodeid.empty());
  CHECK(c.where == "session");
  CHECK(c.worker_id == "controller");
  CHECK(c.pid == 78);
  CHECK(c.signal == SIGSEGV);
  CHECK(c.reason == "killed by SIGSEGV while lpd was restarting: which test it was running is not known");
  CHECK(c.attempt == 3);
  CHECK(c.duration == 0);
}

TEST_CASE("worker.crashed: the xdist controller's word, with what it knew of the end", "[crash]") {
  Crash c = crash_told_by_controller("run-1", "gw1", "t.py::test_x", 79, -SIGABRT, 1, 1000, 30.0);
  CHECK(c.where == "test");
  CHECK(c.nodeid == "t.py::test_x");
  CHECK(c.worker_id == "gw1");
  CHECK(c.signal == SIGABRT);
  CHECK_FALSE(c.exit_code);
  CHECK(c.reason == "killed by SIGABRT while running t.py::test_x (told by the xdist controller: lpd did not see "
                    "this worker end)");
  c = crash_told_by_controller("run-1", "gw1", "t.py::test_x", 0, 3, 1, 1000, 30.0);
  CHECK_FALSE(c.signal);
  CHECK(c.exit_code == 3);
  CHECK(c.reason == "exited with code 3 while running t.py::test_x (told by the xdist controller: lpd did not see "
                    "this worker end)");
  c = crash_told_by_controller("run-1", "gw1", "t.py::test_x", 0, std::nullopt, 1, 1000, 30.0);
  CHECK_FALSE(c.signal);
  CHECK_FALSE(c.exit_code);
  CHECK(c.reason == "exited with code ? while running t.py::test_x (told by the xdist controller: lpd did not see "
                    "this worker end)");
}
