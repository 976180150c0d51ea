#include <catch2/catch.hpp>

#include "daemon/runs/run_registry.h"
#include "protocol/error.h"

using namespace lpd::daemon;
using lpd::protocol::Error;
using lpd::protocol::ErrorCode;

namespace {
JoinRequest join_as(std::string run_id, std::string worker_id, std::uint64_t session, uid_t uid = 1000) {
  JoinRequest r;
  r.run_id = std::move(run_id);
  r.worker_id = std::move(worker_id);
  r.session_id = session;
  r.uid = uid;
  r.pid = static_cast<pid_t>(session * 10);
  return r;
}
}  // namespace

TEST_CASE("a controller starts a run; workers join it; only the controller's departure ends it") {
  RunRegistry runs;
  Run& run = runs.join(join_as("", "", 1), "20260101-000000-abcdef", 10);
  CHECK(run.run_id == "20260101-000000-abcdef");
  runs.join(join_as(run.run_id, "gw0", 2), "unused", 11);
  runs.join(join_as(run.run_id, "gw1", 3), "unused", 11);
  CHECK(runs.find(run.run_id)->workers.size() == 3);
  CHECK(runs.peer_gone(2, 12).empty());
  CHECK(runs.find(run.run_id)->active);
  auto ended = runs.peer_gone(1, 13);
  REQUIRE(ended.size() == 1);
  CHECK_FALSE(ended[0]->active);
  CHECK(ended[0]->ended_at == 13);
  CHECK(runs.active_count() == 0);
  CHECK(runs.list(false).empty());
  CHECK(runs.list(true).size() == 1);
}

TEST_CASE("joining checks ids, owners and whether the run still runs") {
  RunRegistry runs;
  try {
    runs.join(join_as("../escape", "", 1), "x", 1);
    FAIL("must refuse");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kBadRequest);
  }
  runs.join(join_as("mine", "", 1, 1000), "x", 1);
  try {
    runs.join(join_as("mine", "gw0", 2, 2000), "x", 1);
    FAIL("another user must not join");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kPermissionDenied);
  }
  runs.join(join_as("mine", "gw0", 3, 0), "x", 1);  // root may
  runs.end("mine", 5);
  try {
    runs.join(join_as("mine", "gw1", 4, 1000), "x", 6);
    FAIL("an ended run cannot be joined");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kConflict);
  }
}

// h13fix3 (issue 13): ended workers stay on their run and each join rewrites
// run.json: one user joining thousands of workers stalled lpd for everyone.
TEST_CASE("a run takes at most kMaxWorkersPerRun workers; a known one may always rejoin") {
  RunRegistry runs;
  runs.join(join_as("big", "", 1), "x", 1);
  for (std::size_t i = 1; i < RunRegistry::kMaxWorkersPerRun; ++i)
    runs.join(join_as("big", "gw" + std::to_string(i), i + 1), "x", 1);
  CHECK(runs.find("big")->workers.size() == RunRegistry::kMaxWorkersPerRun);
  try {
    runs.join(join_as("big", "one-too-many", 99999), "x", 1);
    FAIL("must refuse");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kLimitExceeded);
    CHECK(std::string(e.what()).find("1024 workers") != std::string::npos);
  }
  CHECK(runs.find("big")->workers.size() == RunRegistry::kMaxWorkersPerRun);
  runs.join(join_as("big", "gw7", 100000), "x", 2);  // a restarted worker of the same id
  runs.join(join_as("big", "", 100001), "x", 2);     // the controller reconnecting
}

// h13fix5 (issue 13): one connection registered 12,000 runs; their ends
// and removal held lpd's one thread for seconds to tens of seconds.
TEST_CASE("a user may have at most kMaxActiveRunsPerUser active runs; root is not limited") {
  RunRegistry runs;
  for (std::size_t i = 0; i < RunRegistry::kMaxActiveRunsPerUser; ++i)
    runs.join(join_as("r" + std::to_string(i), "", i + 1, 1000), "x", 1);
  try {
    runs.join(join_as("one-more", "", 9999, 1000), "x", 1);
    FAIL("must refuse");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kLimitExceeded);
    CHECK(std::string(e.what()).find("256 active runs") != std::string::npos);
  }
  CHECK(runs.find("one-more") == nullptr);
  runs.join(join_as("r3", "gw0", 10000, 1000), "x", 1);       // joining one of them is fine
  runs.join(join_as("other-user", "", 10001, 2000), "x", 1);  // so is another user's
  runs.join(join_as("roots", "", 10002, 0), "x", 1);          // and root's
  runs.end("r0", 2);
  runs.join(join_as("one-more", "", 10003, 1000), "x", 3);  // an ended run makes room
}

TEST_CASE("a restored run is rejoined by its reconnecting controller") {
  RunRegistry runs;
  Run stored;
  stored.run_id = "r1";
  stored.owner = 1000;
  stored.active = true;
  stored.workers["controller"] = Worker{"controller", 77, 5, false};
  runs.restore(stored);
  CHECK(runs.find("r1")->workers["controller"].session_id == 0);  // no connection yet
  runs.join(join_as("r1", "", 9), "x", 2);
  CHECK(runs.find("r1")->workers["controller"].session_id == 9);
  CHECK(runs.peer_gone(9, 3).size() == 1);
}

TEST_CASE("run ids are safe directory names") {
  CHECK(is_safe_id("20260101-000000-abcdef"));
  CHECK(is_safe_id("gw0"));
  CHECK(is_safe_id("a.b_c-d"));
  CHECK_FALSE(is_safe_id(""));
  CHECK_FALSE(is_safe_id(".."));
  CHECK_FALSE(is_safe_id("../x"));
  CHECK_FALSE(is_safe_id("a/b"));
  CHECK_FALSE(is_safe_id("-x"));
  CHECK_FALSE(is_safe_id(std::string(65, 'a')));
  CHECK(is_safe_id(std::string(64, 'a')));
  CHECK(make_run_id(0, 0xabcdef) == "19700101-000000-abcdef");
}

TEST_CASE("Run JSON round-trips with its workers") {
  Run r;
  r.run_id = "r";
  r.owner = 5;
  r.pid = 9;
  r.argv = {"pytest", "-x"};
  r.workers["controller"] = Worker{"controller", 9, 1, false};
  r.workers["gw0"] = Worker{"gw0", 10, 2, false};
  Run back = Run::from_json(r.to_json());
  CHECK(back.run_id == "r");
  CHECK(back.owner == 5);
  CHECK(back.argv == r.argv);
  CHECK(back.active);
  CHECK(back.workers.size() == 2);
}

TEST_CASE("a supervised run keeps the command lpctl run started when its pytest joins") {
  RunRegistry runs;
  Run started;
  started.run_id = "20260101-000000-feed01";
  started.owner = 1000;
  started.cwd = "/home/me/proj";
  started.argv = {"python3", "-m", "pytest", "-n", "2"};
  started.supervised = true;
  runs.restore(started);
  JoinRequest controller = join_as(started.run_id, "", 1);
  controller.cwd = "/home/me/proj/sub";
  controller.argv = {"/usr/lib/python3/dist-packages/pytest/__main__.py", "-n", "2"};
  const Run& joined = runs.join(controller, "unused", 11);
  CHECK(joined.argv == started.argv);
  CHECK(joined.cwd == "/home/me/proj");
  CHECK(joined.pid == controller.pid);
  // A run the controller started itself takes what the controller says.
  JoinRequest plain = join_as("", "", 2);
  plain.argv = {"pytest", "-q"};
  CHECK(runs.join(plain, "20260101-000000-feed02", 12).argv == plain.argv);
}

// h13conn (issue 13, attack finding): a connection's end looked at every
// worker of every run kept; it now looks at the runs that connection joined.
TEST_CASE("a connection's end and run.end touch only the runs that connection joined") {
  RunRegistry runs;
  for (int i = 0; i < 50; ++i) {  // history: ended runs with workers of long-gone connections
    const std::string id = "old-" + std::to_string(i);
    runs.join(join_as(id, "", 1000 + i), "x", 1);
    runs.join(join_as(id, "gw0", 2000 + i), "x", 1);
    runs.end(id, 2);
    runs.peer_gone(1000 + i, 2);
  }
  runs.join(join_as("a", "", 1), "x", 3);
  runs.join(join_as("b", "", 2), "x", 3);
  runs.join(join_as("a", "gw0", 5), "x", 3);
  runs.join(join_as("b", "gw0", 5), "x", 3);  // one connection, a worker of two runs
  CHECK(runs.has_part(5));
  CHECK(runs.has_part(2000));  // old-0's worker never left
  CHECK_FALSE(runs.has_part(1000));  // gone
  CHECK_FALSE(runs.has_part(0));
  runs.finish(5);
  CHECK(runs.find("a")->workers.at("gw0").finished);
  CHECK(runs.find("b")->workers.at("gw0").finished);
  CHECK_FALSE(runs.find("a")->workers.at("controller").finished);
  // gw0 of "a" rejoins from another connection: the old one's end leaves it alone.
  runs.join(join_as("a", "gw0", 6), "x", 4);
  CHECK(runs.peer_gone(5, 5).empty());
  CHECK(runs.find("a")->workers.at("gw0").session_id == 6);
  CHECK(runs.find("b")->workers.at("gw0").session_id == 0);
  CHECK_FALSE(runs.has_part(5));
  // A run removed by retention while its connection lives is skipped.
  runs.join(join_as("c", "", 7), "x", 5);
  runs.end("c", 6);
  CHECK(runs.erase("c"));
  CHECK(runs.peer_gone(7, 7).empty());
  // The controllers' ends end their runs, each once.
  auto ended = runs.peer_gone(1, 8);
  REQUIRE(ended.size() == 1);
  CHECK(ended[0]->run_id == "a");
  CHECK(runs.peer_gone(1, 9).empty());
  CHECK(runs.find("a")->workers.at("gw0").session_id == 6);  // its worker's connection still lives
}

TEST_CASE("a run keeps its argv within kMaxArgvBytes, saying what it left out") {
  // Short: as given.
  CHECK(bounded_argv({"pytest", "-q"}) == std::vector<std::string>{"pytest", "-q"});
  CHECK(bounded_argv({}).empty());
  // Exactly at the bound: whole (each argument counts one byte more).
  CHECK(bounded_argv({"ab", "c"}, 5) == std::vector<std::string>{"ab", "c"});
  CHECK(bounded_argv({"ab", "cd"}, 5) == std::vector<std::string>{"ab", "... 1 more argument(s), 3 bytes, not kept"});
  // A first argument past the bound leaves only the marker.
  CHECK(bounded_argv({std::string(10, 'x'), "y"}, 5) ==
        std::vector<std::string>{"... 2 more argument(s), 13 bytes, not kept"});

  // What a retry's pytest sends: a --deselect per crashed test.
  std::vector<std::string> argv{"python3", "-m", "pytest"};
  for (int i = 0; i < 70; ++i) {
    argv.push_back("--deselect");
    argv.push_back("t.py::test[" + std::string(16000, 'x') + "]");
  }
  RunRegistry registry;
  JoinRequest request = join_as("", "", 1);
  request.argv = argv;
  const Run& run = registry.join(request, "20260101-000000-abcdef", 1.0);
  std::size_t kept_bytes = 0;
  for (const auto& arg : run.argv) kept_bytes += arg.size() + 1;
  CHECK(kept_bytes <= kMaxArgvBytes + 64);  // the marker beyond the bound
  REQUIRE(run.argv.size() > 3);
  CHECK(std::vector<std::string>(run.argv.begin(), run.argv.begin() + 3) == std::vector<std::string>{"python3", "-m", "pytest"});
  CHECK(run.argv.back().rfind("... ", 0) == 0);
  CHECK(run.argv.back().find("not kept") != std::string::npos);
}

TEST_CASE("a new run never gets the id of a run kept, even when the clock and the random bits repeat") {
  RunRegistry runs;
  const double now = 1'790'000'000.5;
  // The random source says the same thing twice, as two registrations in
  // one second do once in 16 million pairs.
  std::vector<std::uint32_t> draws = {0xabcdef, 0xabcdef, 0x123456};
  std::size_t next = 0;
  const auto random = [&] { return draws.at(next++); };
  const std::string first = runs.unused_run_id("", now, random);
  runs.join(join_as("", "", 1), first, now);
  const std::string second = runs.unused_run_id("", now, random);
  CHECK(second != first);
  CHECK(second.ends_with("-123456"));
  CHECK(next == 3);  // the repeated draw was seen and drawn again
  // A named run's prefix is part of what must not repeat.
  next = 0;
  CHECK(runs.unused_run_id("nightly-", now, random) == "nightly-" + first);
  // Two runs of two unrelated sessions stay two runs.
  runs.join(join_as("", "", 2), second, now);
  CHECK(runs.find(first)->workers.size() == 1);
  CHECK(runs.find(second)->workers.size() == 1);
}
