// JobService driven through the fake launcher (tests/unit/fake_launcher.h):
// attempts, crash attribution, isolated reruns, retries, a stop and the
// final exit code, with no process started and no socket. The "monitor"
// ends when the test says so; its exit status is the file lpd-monitor
// would have written; shims are calls with a Peer of their own.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "daemon/core/access.h"
#include "daemon/crashes/crash_store.h"
#include "daemon/core/event_bus.h"
#include "daemon/jobs/job_ops.h"
#include "daemon/jobs/job_service.h"
#include "daemon/jobs/shim_ops.h"
#include "daemon/runs/run_registry.h"
#include "daemon/runs/session_drain.h"
#include "daemon/core/state_store.h"
#include "protocol/error.h"
#include "tests/unit/fake_launcher.h"
#include "tests/unit/text_has.h"

using namespace lpd::daemon;
using nlohmann::json;

namespace {

std::string read_state_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// One lpd's job family over a temporary state directory. It is its own
/// SessionDrain: it records which connections JobService had drained.
struct Jobs : SessionDrain {
  std::string root;
  boost::asio::io_context io;  // first: the service's timers and watches go before it
  EventBus events;
  StateStore store;
  CrashStore crashes{store};
  RunRegistry runs;
  FakeLauncher launcher;
  AccessPolicy access;
  std::vector<std::uint64_t> drained;
  std::unique_ptr<JobService> jobs;

  Jobs() : root(make_root()), store(root) {
    launcher.end_descriptors = true;
    launcher.pid = FakeLauncher::kNoSuchPid;  // a stop signals the "monitor": nobody gets it
    jobs = std::make_unique<JobService>(io, events, store, crashes, runs, launcher, access,
                                        JobEnvironment{"/lpd-test/lpd-monitor", "/lpd-test/shim", "/lpd-test/socket",
                                                       RunOutputLimits{}},
                                        *this);
  }
  ~Jobs() override {
    jobs.reset();
    std::filesystem::remove_all(root);
  }
  Jobs(const Jobs&) = delete;
  Jobs& operator=(const Jobs&) = delete;

  static std::string make_root() {
    char dir[] = "/tmp/lpd-job-service-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    return dir;
  }

  void drain(std::uint64_t session_id) override { drained.push_back(session_id); }

  /// A connection of this test process's user (lpd runs as them: no run-as).
  static Peer peer(std::uint64_t session, pid_t pid) {
    Peer p;
    p.session_id = session;
    p.uid = ::geteuid();
    p.gid = ::getegid();
    p.pid = pid;
    return p;
  }

  /// `handler` (an ops function of the jobs family) of `body` from `from`.
  json call(json (*handler)(JobService&, Call&), Peer& from, json body) {
    Call c{body, lpd::protocol::Fields(body), from, nullptr, false, json(), false, AccessPolicy{}};
    return handler(*jobs, c);
  }

  /// run.start of `argv` in the state directory; returns the run id.
  std::string start(std::vector<std::string> argv, json extra = json::object()) {
    Peer cli = peer(1, ::getpid());
    json body = {{"argv", argv}, {"cwd", root}, {"env", {{"PATH", "/usr/bin:/bin"}}}};
    body.update(extra);
    return call(handle_run_start, cli, body).at("run_id").get<std::string>();
  }

  json info(const std::string& run_id) {
    return jobs->info(run_id);
  }

  /// A shim's connection joins the run (what RunService tells its watcher).
  Peer join(const std::string& run_id, const std::string& worker, std::uint64_t session, pid_t pid) {
    Peer p = peer(session, pid);
    const Run* run = runs.find(run_id);
    REQUIRE(run);
    jobs->worker_joined(*run, worker, p);
    return p;
  }
  void test_start(Peer& p, const std::string& nodeid) { call(handle_test_start, p, {{"nodeid", nodeid}}); }
  void test_finish(Peer& p, const std::string& nodeid, const std::string& outcome) {
    call(handle_test_finish, p, {{"nodeid", nodeid}, {"outcome", outcome}});
  }

  /// Attempt `index` (0-based launch) ends as lpd-monitor says in `status`.
  void end_attempt(const std::string& run_id, std::size_t index, json status) {
    status["state"] = "exited";
    std::ofstream(root + "/runs/" + run_id + "/exit.json") << status.dump();
    launcher.end(index);
  }

  /// Runs the event loop until `done` holds (false if it never does: the
  /// loop ran out of work or waited 10 s for an event).
  template <typename Done>
  bool run_until(Done done) {
    while (!done()) {
      io.restart();
      if (io.run_one_for(std::chrono::seconds(10)) == 0) return done();
    }
    return true;
  }
  bool done(const std::string& run_id) {
    return run_until([&] { return info(run_id).at("state") == "done"; });
  }

  std::vector<Crash> crashes_of(const std::string& run_id) const {
    std::vector<Crash> out;
    for (const Crash* c : crashes.of_run(run_id)) out.push_back(*c);
    return out;
  }
  /// After "--": the command line the attempt ran (lpd-monitor's own
  /// options come before).
  std::vector<std::string> command_of(std::size_t index) const {
    const auto& argv = launcher.launched.at(index).argv;
    const auto dash = std::find(argv.begin(), argv.end(), "--");
    REQUIRE(dash != argv.end());
    return {dash + 1, argv.end()};
  }
  /// The command's environment as written for lpd-monitor (NUL-separated).
  std::string command_env(const std::string& run_id) const {
    return read_state_file(root + "/runs/" + run_id + "/command.env");
  }
};


}  // namespace

TEST_CASE("a job's first attempt: lpd-monitor launched with the command, the run in progress", "[job][jobservice]") {
  Jobs j;
  const std::string run_id = j.start({"python3", "-m", "pytest", "tests"});
  REQUIRE(j.launcher.launched.size() == 1);
  const LaunchSpec& spec = j.launcher.launched[0];
  CHECK(spec.argv.front() == "/lpd-test/lpd-monitor");
  CHECK(j.command_of(0) == std::vector<std::string>{"python3", "-m", "pytest", "tests"});
  CHECK(spec.new_session);
  CHECK_FALSE(spec.contain_tree);  // the monitor keeps the command's tree itself
  CHECK(std::find(spec.blocked_signals.begin(), spec.blocked_signals.end(), SIGINT) != spec.blocked_signals.end());
  const json info = j.info(run_id);
  CHECK(info.at("state") == "in-progress");
  CHECK(info.at("attempt") == 1);
  const std::string env = j.command_env(run_id);
  CHECK(has(env, std::string("LPD_RUN_ID=") + run_id + '\0'));
  CHECK(has(env, std::string("LPD_ATTEMPT=1") + '\0'));
  CHECK(has(env, std::string("PYTEST_PLUGINS=lpd_pytest") + '\0'));
  CHECK(has(env, std::string("LPD_SOCKET=/lpd-test/socket") + '\0'));
}

TEST_CASE("a crash pinned on its test, rerun alone, passes: a flaky crash and exit code 0", "[job][jobservice]") {
  Jobs j;
  const std::string run_id = j.start({"python3", "-m", "pytest", "tests"}, {{"rerun_crashed", 1}});
  Peer controller = j.join(run_id, "controller", 10, 5001);
  j.test_start(controller, "t.py::test_pass");
  j.test_finish(controller, "t.py::test_pass", "passed");
  j.test_start(controller, "t.py::test_crash");
  // The command dies of SIGSEGV; the controller's connection is still in lpd's queue.
  j.end_attempt(run_id, 0, {{"signal", SIGSEGV}, {"pid", 5001}});
  REQUIRE(j.run_until([&] { return j.launcher.launched.size() == 2; }));
  // Its ring was read before its end was judged (the back-edge).
  CHECK(j.drained == std::vector<std::uint64_t>{10});
  auto crashes = j.crashes_of(run_id);
  REQUIRE(crashes.size() == 1);
  CHECK(crashes[0].nodeid == "t.py::test_crash");
  CHECK(crashes[0].where == "test");
  CHECK(crashes[0].signal == SIGSEGV);
  CHECK(crashes[0].worker_id == "controller");
  CHECK(crashes[0].attempt == 1);
  CHECK(crashes[0].reason == "killed by SIGSEGV while running t.py::test_crash (setup)");
  // The rerun: the same command line, the crashed test alone through the shim's file.
  CHECK(j.command_of(1) == std::vector<std::string>{"python3", "-m", "pytest", "tests"});
  CHECK(read_state_file(j.root + "/runs/" + run_id + "/only-nodeids.txt") == "t.py::test_crash\n");
  CHECK(has(j.command_env(run_id), std::string("LPD_ATTEMPT=2") + '\0'));
  CHECK(has(j.command_env(run_id), "LPD_ONLY_NODEIDS_FILE=" + j.root + "/runs/" + run_id + "/only-nodeids.txt"));
  json info = j.info(run_id);
  CHECK(info.at("state") == "in-progress");
  CHECK(info.at("attempt_kind") == "rerun");

  Peer rerun = j.join(run_id, "controller", 11, 5002);
  j.test_start(rerun, "t.py::test_crash");
  j.test_finish(rerun, "t.py::test_crash", "passed");
  j.jobs->worker_ended_cleanly(rerun);
  j.jobs->peer_gone(rerun);
  j.end_attempt(run_id, 1, {{"exit_code", 0}, {"pid", 5002}});
  REQUIRE(j.done(run_id));
  CHECK(j.launcher.launched.size() == 2);
  crashes = j.crashes_of(run_id);
  REQUIRE(crashes.size() == 1);
  CHECK(crashes[0].flaky);
  info = j.info(run_id);
  CHECK(info.at("returncode") == 0);
  CHECK(info.at("text") ==
        "its last full run killed by SIGSEGV, 1 crash(es), 1 flaky; the run passes with exit code 0: every crash "
        "passed when re-run");
  CHECK(info.at("tests") == 2);  // test_pass, and test_crash once it passed alone
  CHECK(info.at("crashes") == 1);
}

TEST_CASE("an xdist worker's crash, told by worker.down, then a retry without it", "[job][jobservice]") {
  Jobs j;
  const std::string run_id = j.start({"pytest", "-n", "2", "tests"}, {{"retry_crashed", 1}});
  Peer controller = j.join(run_id, "controller", 20, 6000);
  Peer gw0 = j.join(run_id, "gw0", 21, 6001);
  j.test_start(gw0, "t.py::test_b");
  // The worker's connection closes as it dies: its end is not known yet.
  j.jobs->peer_gone(gw0);
  CHECK(j.crashes_of(run_id).empty());
  // Its controller reaped it and says how it ended.
  j.call(handle_worker_down, controller, {{"pid", 6001}, {"returncode", -SIGABRT}});
  auto crashes = j.crashes_of(run_id);
  REQUIRE(crashes.size() == 1);
  CHECK(crashes[0].nodeid == "t.py::test_b");
  CHECK(crashes[0].worker_id == "gw0");
  CHECK(crashes[0].signal == SIGABRT);
  // The same death told again by the controller (worker.crashed) is not a second record.
  j.call(handle_worker_crashed, controller,
         {{"worker_id", "gw0"}, {"nodeid", "t.py::test_b"}, {"pid", 6001}, {"returncode", -SIGABRT}});
  CHECK(j.crashes_of(run_id).size() == 1);
  j.test_finish(controller, "t.py::test_b", "failed");  // xdist's own report of the crashed test
  j.jobs->worker_ended_cleanly(controller);
  j.end_attempt(run_id, 0, {{"exit_code", 1}, {"pid", 6000}});
  REQUIRE(j.run_until([&] { return j.launcher.launched.size() == 2; }));
  CHECK(j.command_of(1) == std::vector<std::string>{"pytest", "-n", "2", "tests", "--deselect", "t.py::test_b"});
  CHECK(read_state_file(j.root + "/runs/" + run_id + "/deselect.txt") == "t.py::test_b\n");
  CHECK(j.info(run_id).at("attempt_kind") == "retry");

  Peer again = j.join(run_id, "controller", 22, 6100);
  j.test_start(again, "t.py::test_c");
  j.test_finish(again, "t.py::test_c", "passed");
  j.jobs->worker_ended_cleanly(again);
  j.end_attempt(run_id, 1, {{"exit_code", 0}, {"pid", 6100}});
  REQUIRE(j.done(run_id));
  CHECK(j.launcher.launched.size() == 2);  // one retry, as asked
  const json info = j.info(run_id);
  // The crashed test never passed again: the retry's 0 is not the run's.
  CHECK(info.at("returncode") == 1);
  CHECK(info.at("text") ==
        "its last full run exited with code 0, 1 crash(es); the run fails with exit code 1: a test crashed");
  CHECK_FALSE(j.crashes_of(run_id)[0].flaky);
}

TEST_CASE("a stopped job: the running test is interrupted, no crash, no rerun", "[job][jobservice]") {
  Jobs j;
  const std::string run_id = j.start({"python3", "-m", "pytest", "tests"}, {{"rerun_crashed", 2}});
  Peer controller = j.join(run_id, "controller", 30, 7000);
  j.test_start(controller, "t.py::test_slow");
  const json stopped = j.jobs->stop(run_id, 60.0, SIGINT);
  CHECK(stopped.at("job").at("state") == "terminating");
  j.end_attempt(run_id, 0, {{"signal", SIGINT}, {"pid", 7000}});
  REQUIRE(j.done(run_id));
  CHECK(j.launcher.launched.size() == 1);
  CHECK(j.crashes_of(run_id).empty());
  const json info = j.info(run_id);
  CHECK(info.at("returncode") == 128 + SIGINT);
  CHECK(info.at("text") == "killed by SIGINT, 1 interrupted");
  CHECK(info.at("tests") == 1);
  // A second stop of a done run changes nothing.
  CHECK_THROWS_AS(j.jobs->stop(run_id, std::nullopt, SIGINT), lpd::protocol::Error);
}

TEST_CASE("a command that reports no tests is one testcase; its signal death is its crash", "[job][jobservice]") {
  Jobs j;
  // Retries need a runner lpd can leave tests out of: refused at once.
  CHECK_THROWS_AS(j.start({"/bin/sh", "-c", "exit 0"}, {{"retry_crashed", 1}}), lpd::protocol::Error);
  CHECK(j.launcher.launched.empty());
  const std::string run_id = j.start({"/bin/sh", "-c", "kill -9 $$"});
  j.end_attempt(run_id, 0, {{"signal", SIGKILL}, {"pid", 8000}});
  REQUIRE(j.done(run_id));
  const auto crashes = j.crashes_of(run_id);
  REQUIRE(crashes.size() == 1);
  CHECK(crashes[0].nodeid == "sh");
  CHECK(crashes[0].where == "command");
  CHECK(crashes[0].pid == 8000);
  CHECK(crashes[0].reason == "killed by SIGKILL (the command reported no tests)");
  const json info = j.info(run_id);
  CHECK(info.at("returncode") == 128 + SIGKILL);
  CHECK(info.at("text") == "killed by SIGKILL, 1 crash(es)");
  CHECK(info.at("tests") == 1);
}

TEST_CASE("a plain command's exit code is the run's; an unknown end is 1, never made up", "[job][jobservice]") {
  Jobs j;
  const std::string ok = j.start({"/bin/sh", "-c", "exit 3"});
  j.end_attempt(ok, 0, {{"exit_code", 3}, {"pid", 8100}});
  REQUIRE(j.done(ok));
  CHECK(j.info(ok).at("returncode") == 3);
  CHECK(j.crashes_of(ok).empty());
  // lpd-monitor left no status (killed with lpd): no code is invented.
  const std::string lost = j.start({"/bin/sh", "-c", "true"});
  j.launcher.end(1);
  REQUIRE(j.done(lost));
  CHECK(j.info(lost).at("returncode") == 1);
  CHECK(j.info(lost).at("text") ==
        "ended with no exit status lpd could read (its lpd-monitor is gone); the run fails with exit code 1: how the "
        "command ended is not known");
}

TEST_CASE("a command dead by a signal with no process left to say which test ran: a crash on no test",
          "[job][jobservice]") {
  Jobs j;
  const std::string run_id = j.start({"python3", "-m", "pytest", "tests"});
  // One worker reported its tests and ended cleanly; the controller never
  // came back (lpd was restarting).
  Peer gw0 = j.join(run_id, "gw0", 40, 9001);
  j.test_start(gw0, "t.py::test_a");
  j.test_finish(gw0, "t.py::test_a", "passed");
  j.jobs->worker_ended_cleanly(gw0);
  j.jobs->peer_gone(gw0);
  j.end_attempt(run_id, 0, {{"signal", SIGSEGV}, {"pid", 9000}});
  REQUIRE(j.done(run_id));
  const auto crashes = j.crashes_of(run_id);
  REQUIRE(crashes.size() == 1);
  CHECK(crashes[0].nodeid.empty());
  CHECK(crashes[0].pid == 9000);
  CHECK(crashes[0].reason == "killed by SIGSEGV while lpd was restarting: which test it was running is not known");
  const json info = j.info(run_id);
  CHECK(info.at("returncode") == 128 + SIGSEGV);
  CHECK(info.at("text") == "killed by SIGSEGV, 1 crash(es)");
}

TEST_CASE("tests collected but never run are counted in the verdict: not those that ran or crashed", "[job][jobservice]") {
  Jobs j;
  const std::string run_id = j.start({"python3", "-m", "pytest", "tests"});
  Peer controller = j.join(run_id, "controller", 10, 5001);
  // Collected five; a collection error names a module (a failure outside
  // tests: its nodeid is no test that ran).
  j.call(handle_collection_items, controller,
         {{"nodeids", {"t.py::a", "t.py::b", "t.py::c", "t.py::d", "u.py"}}});
  j.call(handle_session_error, controller,
         {{"phase", "collection"}, {"nodeid", "u.py"}, {"message", "ImportError"}});
  j.test_start(controller, "t.py::a");
  j.test_finish(controller, "t.py::a", "passed");
  j.test_start(controller, "t.py::b");  // crashes here
  j.end_attempt(run_id, 0, {{"signal", SIGSEGV}, {"pid", 5001}});
  REQUIRE(j.done(run_id));
  REQUIRE(j.crashes_of(run_id).size() == 1);
  // Ran: a (passed), b (crashed). Never ran: c, d, and u.py (only its
  // collection error is known).
  CHECK(j.info(run_id).at("text") == "killed by SIGSEGV, 1 crash(es), 3 never ran");
}

TEST_CASE("a --collect-only run steps to collected on its controller's collection.finish, then done", "[job][jobservice]") {
  Jobs j;
  const std::string run_id = j.start({"python3", "-m", "pytest", "--collect-only", "tests"}, {{"retry_crashed", 1}});
  Peer worker = j.join(run_id, "gw0", 11, 5002);
  Peer controller = j.join(run_id, "controller", 10, 5001);
  j.call(handle_collection_items, controller, {{"nodeids", {"t.py::a", "t.py::b", "t.py::c"}}});
  // A worker's count makes room for results; only the controller's says collection is over.
  j.call(handle_collection_finish, worker, {{"count", 3}});
  CHECK(j.info(run_id).at("state") == "in-progress");
  j.call(handle_collection_finish, controller, {{"count", 3}});
  json info = j.info(run_id);
  CHECK(info.at("state") == "collected");
  CHECK(info.at("text") == "collected 3 test(s)");
  // The table has no (collected, collected) row: a second one moves nothing.
  j.call(handle_collection_finish, controller, {{"count", 5}});
  CHECK(j.info(run_id).at("text") == "collected 3 test(s)");
  // Both end their sessions; the command exits 0: a collected job runs no
  // retry, and none of what it collected "never ran".
  j.jobs->worker_ended_cleanly(worker);
  j.jobs->worker_ended_cleanly(controller);
  j.end_attempt(run_id, 0, {{"exit_code", 0}, {"pid", 5001}});
  REQUIRE(j.done(run_id));
  info = j.info(run_id);
  CHECK(info.at("returncode") == 0);
  CHECK(info.at("attempt") == 1);
  CHECK(info.at("text") == "exited with code 0");
  CHECK(j.launcher.launched.size() == 1);
}

// h13quota (issue 13, stop 35's attack): a run lpd does not supervise (plain
// pytest with the shim) had no failure-text budget, and one user's
// test.finish messages with long texts filled the state disk.
TEST_CASE("a run lpd does not supervise keeps its failure texts within a run's budget too", "[job][jobservice]") {
  Jobs j;
  const auto unsupervised = [&](const std::string& run_id, std::uint64_t session) {
    Run run;
    run.run_id = run_id;
    run.owner = ::geteuid();
    run.pid = ::getpid();
    j.runs.restore(run);
    return j.join(run_id, "controller", session, ::getpid());
  };
  std::map<std::string, std::vector<std::size_t>> longreprs;  // run id -> each test.finish's longrepr size
  j.events.subscribe([&](const Event& e) {
    if (e.type == "test.finish") longreprs[e.run_id].push_back(e.data().value("longrepr", "").size());
  });
  const std::string text(kMaxLongrepr, 'x');
  const auto fail = [&](Peer& p, int i) {
    j.call(handle_test_finish, p,
           {{"nodeid", "t.py::test_" + std::to_string(i)}, {"outcome", "failed"}, {"longrepr", text}});
  };
  Peer greedy = unsupervised("20261202-080000-aaaaaa", 11);
  const std::size_t whole = kMaxRunFailureText / kMaxLongrepr;  // results the budget holds whole
  for (std::size_t i = 0; i < whole + 3; ++i) fail(greedy, static_cast<int>(i));
  const auto& sizes = longreprs["20261202-080000-aaaaaa"];
  REQUIRE(sizes.size() == whole + 3);
  CHECK(sizes[whole - 1] == kMaxLongrepr);
  for (std::size_t i = whole; i < whole + 3; ++i) CHECK(sizes[i] < 8 * 1024);  // cut, saying so
  // Another run has a budget of its own.
  Peer other = unsupervised("20261202-080001-bbbbbb", 12);
  fail(other, 0);
  CHECK(longreprs["20261202-080001-bbbbbb"] == std::vector<std::size_t>{kMaxLongrepr});
}
