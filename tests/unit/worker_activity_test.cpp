// Crash attribution (daemon/crashes/worker_activity.h): which test a
// process's death is pinned on, in which phase, and when an end is no crash.
#include <csignal>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "daemon/crashes/worker_activity.h"
#include "daemon/jobs/job_lifecycle.h"

using namespace lpd::daemon;

namespace {

/// One row: what the process told lpd (`told`), how it ended, and the
/// record lpd makes of it (nullopt: no crash).
struct ActivityRow {
  const char* what;
  std::function<void(WorkerActivity&)> told;
  ExitStatus end;
  struct Expected {
    std::string where;
    std::string nodeid;
    std::string phase;
    std::optional<int> signal;
    std::optional<int> exit_code;
    std::string reason;
  };
  std::optional<Expected> crash;
};

constexpr double kStart = 100.0;
constexpr double kEnd = 102.5;

void ran_a(WorkerActivity& a) {
  a.test_started("t.py::test_a", kStart - 5);
  a.test_finished("t.py::test_a");
}

}  // namespace

TEST_CASE("crash attribution: a death is pinned on the running test, its phase, or the session", "[crash]") {
  const std::vector<ActivityRow> rows = {
      {"a clean session end is no crash, whatever the code",
       [](WorkerActivity& a) { ran_a(a); a.clean_end(); }, ExitStatus{std::nullopt, 0}, std::nullopt},
      {"a clean end with a failing code (pytest's 1) is pytest's verdict, not a crash",
       [](WorkerActivity& a) { ran_a(a); a.clean_end(); }, ExitStatus{std::nullopt, 1}, std::nullopt},
      {"a clean end then a signal (an atexit handler crashed): a crash at exit",
       [](WorkerActivity& a) { ran_a(a); a.clean_end(); }, ExitStatus{SIGSEGV, std::nullopt},
       ActivityRow::Expected{"session", "", "exit", SIGSEGV, std::nullopt, "killed by SIGSEGV outside any test (exit)"}},
      {"a signal during a test's setup (test.start precedes the fixtures)",
       [](WorkerActivity& a) { a.test_started("t.py::test_b", kStart); }, ExitStatus{SIGSEGV, std::nullopt},
       ActivityRow::Expected{"test", "t.py::test_b", "setup", SIGSEGV, std::nullopt,
                     "killed by SIGSEGV while running t.py::test_b (setup)"}},
      {"test.phase moves the test on to its call",
       [](WorkerActivity& a) { a.test_started("t.py::test_b", kStart); a.phase("call"); },
       ExitStatus{SIGABRT, std::nullopt},
       ActivityRow::Expected{"test", "t.py::test_b", "call", SIGABRT, std::nullopt,
                     "killed by SIGABRT while running t.py::test_b (call)"}},
      {"a native shim's test starts in its call (its API has no phases)",
       [](WorkerActivity& a) { a.test_started("Suite.Case", kStart, std::nullopt, "call"); },
       ExitStatus{SIGSEGV, std::nullopt},
       ActivityRow::Expected{"test", "Suite.Case", "call", SIGSEGV, std::nullopt,
                     "killed by SIGSEGV while running Suite.Case (call)"}},
      {"an exit mid-test without a clean end (os._exit, sys.exit in a fixture) is a crash with its code",
       [](WorkerActivity& a) { a.test_started("t.py::test_b", kStart); a.phase("teardown"); },
       ExitStatus{std::nullopt, 3},
       ActivityRow::Expected{"test", "t.py::test_b", "teardown", std::nullopt, 3,
                     "exited with code 3 without finishing its session while running t.py::test_b (teardown)"}},
      {"no status at all (an unsupervised process's connection closed mid-test)",
       [](WorkerActivity& a) { a.test_started("t.py::test_b", kStart); }, ExitStatus{},
       ActivityRow::Expected{"test", "t.py::test_b", "setup", std::nullopt, std::nullopt,
                     "connection closed without a clean session end while running t.py::test_b (setup)"}},
      {"before any test: a crash during collection",
       [](WorkerActivity&) {}, ExitStatus{SIGSEGV, std::nullopt},
       ActivityRow::Expected{"collection", "", "collection", SIGSEGV, std::nullopt, "killed by SIGSEGV during collection"}},
      {"no test ran, the session ended cleanly, then a crash at exit: not collection",
       [](WorkerActivity& a) { a.clean_end(); }, ExitStatus{SIGSEGV, std::nullopt},
       ActivityRow::Expected{"session", "", "exit", SIGSEGV, std::nullopt, "killed by SIGSEGV outside any test (exit)"}},
      {"no test ran, a crash in sessionstart: the session's, not collection's",
       [](WorkerActivity& a) { a.session_phase("sessionstart"); }, ExitStatus{SIGABRT, std::nullopt},
       ActivityRow::Expected{"session", "", "sessionstart", SIGABRT, std::nullopt,
                     "killed by SIGABRT outside any test (sessionstart)"}},
      {"the shim said collection: a crash there is during collection",
       [](WorkerActivity& a) { a.session_phase("collection"); }, ExitStatus{SIGABRT, std::nullopt},
       ActivityRow::Expected{"collection", "", "collection", SIGABRT, std::nullopt, "killed by SIGABRT during collection"}},
      {"between tests, after the last finished: sessionfinish",
       [](WorkerActivity& a) { ran_a(a); }, ExitStatus{SIGKILL, std::nullopt},
       ActivityRow::Expected{"session", "", "sessionfinish", SIGKILL, std::nullopt,
                     "killed by SIGKILL outside any test (sessionfinish)"}},
      {"the session phase the shim named wins over the guess",
       [](WorkerActivity& a) { ran_a(a); a.session_phase("sessionfinish"); a.session_phase("exit"); },
       ExitStatus{SIGBUS, std::nullopt},
       ActivityRow::Expected{"session", "", "exit", SIGBUS, std::nullopt, "killed by SIGBUS outside any test (exit)"}},
      {"a test.start ends the collection phase: the death is the test's",
       [](WorkerActivity& a) { a.session_phase("collection"); a.test_started("t.py::test_c", kStart); },
       ExitStatus{SIGSEGV, std::nullopt},
       ActivityRow::Expected{"test", "t.py::test_c", "setup", SIGSEGV, std::nullopt,
                     "killed by SIGSEGV while running t.py::test_c (setup)"}},
      {"a finish naming another test (a lost message) still ends the running one",
       [](WorkerActivity& a) { a.test_started("t.py::test_c", kStart); a.test_finished("t.py::other"); },
       ExitStatus{SIGSEGV, std::nullopt},
       ActivityRow::Expected{"session", "", "sessionfinish", SIGSEGV, std::nullopt,
                     "killed by SIGSEGV outside any test (sessionfinish)"}},
      {"a native crash notice names the signal the exit status lacks (the handler _exit()ed)",
       [](WorkerActivity& a) { a.test_started("Suite.Case", kStart, std::nullopt, "call"); a.crash_notice(SIGFPE); },
       ExitStatus{std::nullopt, 1},
       ActivityRow::Expected{"test", "Suite.Case", "call", SIGFPE, std::nullopt,
                     "killed by SIGFPE while running Suite.Case (call)"}},
      {"the wait status's signal wins over a notice",
       [](WorkerActivity& a) { a.test_started("Suite.Case", kStart); a.crash_notice(SIGFPE); },
       ExitStatus{SIGKILL, std::nullopt},
       ActivityRow::Expected{"test", "Suite.Case", "setup", SIGKILL, std::nullopt,
                     "killed by SIGKILL while running Suite.Case (setup)"}},
      {"faulthandler's first line names the signal when nothing else does",
       [](WorkerActivity& a) {
         a.test_started("t.py::test_d", kStart);
         a.add_traceback("Fatal Python error: Aborted\n\nCurrent thread ...\n");
       },
       ExitStatus{std::nullopt, 1},
       ActivityRow::Expected{"test", "t.py::test_d", "setup", SIGABRT, std::nullopt,
                     "killed by SIGABRT while running t.py::test_d (setup)"}},
      {"a notice wins over the traceback's words",
       [](WorkerActivity& a) {
         a.test_started("t.py::test_d", kStart);
         a.add_traceback("Fatal Python error: Aborted\n");
         a.crash_notice(SIGSEGV);
       },
       ExitStatus{}, ActivityRow::Expected{"test", "t.py::test_d", "setup", SIGSEGV, std::nullopt,
                                   "killed by SIGSEGV while running t.py::test_d (setup)"}},
      {"a fatal traceback after a clean session end is still a crash",
       [](WorkerActivity& a) { ran_a(a); a.clean_end(); a.add_traceback("Fatal Python error: Segmentation fault\n"); },
       ExitStatus{std::nullopt, 0},
       ActivityRow::Expected{"session", "", "exit", SIGSEGV, std::nullopt, "killed by SIGSEGV outside any test (exit)"}},
      {"a traceback that names no fatal signal does not make a clean end a crash",
       [](WorkerActivity& a) { ran_a(a); a.clean_end(); a.add_traceback("Timeout (0:00:05)!\nThread 0x1\n"); },
       ExitStatus{std::nullopt, 0}, std::nullopt},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    WorkerActivity a("run-1", "gw3", 4321, 1000, 2);
    row.told(a);
    const auto crash = a.crash_on(row.end, kEnd);
    REQUIRE(crash.has_value() == row.crash.has_value());
    if (!crash) continue;
    CHECK(crash->where == row.crash->where);
    CHECK(crash->nodeid == row.crash->nodeid);
    CHECK(crash->phase == row.crash->phase);
    CHECK(crash->signal == row.crash->signal);
    CHECK(crash->exit_code == row.crash->exit_code);
    CHECK(crash->reason == row.crash->reason);
    // Who died, whoever it was pinned on.
    CHECK(crash->run_id == "run-1");
    CHECK(crash->worker_id == "gw3");
    CHECK(crash->pid == 4321);
    CHECK(crash->owner == 1000);
    CHECK(crash->attempt == 2);
    CHECK(crash->crash_time == kEnd);
    CHECK(crash->crash_id == 0);  // numbered by the store, not here
    CHECK_FALSE(crash->flaky);
    // How long the test had run; nothing for a death outside tests.
    CHECK(crash->duration == (crash->where == "test" ? kEnd - kStart : 0.0));
  }
}

TEST_CASE("crash attribution keeps the traceback, bounded, from before the process joined", "[crash]") {
  WorkerActivity a("run-1", "controller", 10, 0, 1);
  a.test_started("t.py::test_e", kStart);
  a.add_traceback("Fatal Python error: Segmentation fault\n\n");
  a.add_traceback("  File \"t.py\", line 3 in test_e\n");
  auto crash = a.crash_on(ExitStatus{SIGSEGV, std::nullopt}, kEnd);
  REQUIRE(crash);
  CHECK(crash->traceback == "Fatal Python error: Segmentation fault\n\n  File \"t.py\", line 3 in test_e\n");

  // A process that floods its traceback connection is kept to about
  // BoundedTraceback::kMaxBytes: its head and its end.
  WorkerActivity flood("run-1", "gw0", 11, 0, 1);
  flood.add_traceback("Fatal Python error: Segmentation fault\n\n");
  for (int i = 0; i < 10000; ++i) flood.add_traceback("Thread " + std::to_string(i) + ":\n  File \"t.py\", line 1\n");
  flood.add_traceback("Current thread 0x1 (most recent call first):\n  File \"t.py\", line 3 in test_e\n");
  crash = flood.crash_on(ExitStatus{SIGSEGV, std::nullopt}, kEnd);
  REQUIRE(crash);
  CHECK(crash->traceback.size() <= BoundedTraceback::kMaxBytes + 100);
  CHECK(crash->traceback.rfind("Fatal Python error: Segmentation fault\n", 0) == 0);
  CHECK(crash->traceback.find("bytes of this traceback here ...\n") != std::string::npos);
  const std::string last = "Current thread 0x1 (most recent call first):\n  File \"t.py\", line 3 in test_e\n";
  CHECK(crash->traceback.substr(crash->traceback.size() - last.size()) == last);
}

TEST_CASE("what the activity says between messages: current test, phase, clean end, running time", "[crash]") {
  WorkerActivity a("run-1", "gw0", 12, 0, 1);
  CHECK_FALSE(a.current_test());
  CHECK(a.current_phase().empty());
  CHECK(a.outside_phase() == "collection");
  CHECK(a.running_for(kEnd) == 0);
  a.test_started("t.py::test_f", kStart);
  CHECK(a.current_test() == "t.py::test_f");
  CHECK(a.running_for(kEnd) == kEnd - kStart);
  a.phase("call");
  CHECK(a.current_phase() == "call");
  a.test_finished("t.py::test_f");
  CHECK_FALSE(a.current_test());
  CHECK(a.outside_phase() == "sessionfinish");
  CHECK_FALSE(a.ended_cleanly());
  a.clean_end();
  CHECK(a.ended_cleanly());
  CHECK(a.outside_phase() == "exit");
}

TEST_CASE("a process's end while its job is stopped: only the stop's own signals interrupt", "[crash][job]") {
  // Every signal a process can die of, not only the ones the rule names.
  for (int signo = 1; signo < 32; ++signo) {
    INFO("signal " << signo);
    const bool stop_signal = signo == SIGINT || signo == SIGTERM || signo == SIGHUP || signo == SIGKILL;
    CHECK(worker_end_verdict(true, true, signo) ==
          (stop_signal ? WorkerEndVerdict::kInterrupted : WorkerEndVerdict::kCrash));
    CHECK(worker_end_verdict(true, false, signo) == WorkerEndVerdict::kCrash);
    CHECK(worker_end_verdict(false, true, signo) == WorkerEndVerdict::kNothing);
    CHECK(worker_end_verdict(false, false, signo) == WorkerEndVerdict::kNothing);
  }
  // Cut short without a signal (exited mid-test): interrupted during a stop, else a crash.
  CHECK(worker_end_verdict(true, true, std::nullopt) == WorkerEndVerdict::kInterrupted);
  CHECK(worker_end_verdict(true, false, std::nullopt) == WorkerEndVerdict::kCrash);
}
