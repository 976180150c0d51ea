#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <sys/types.h>

#include "daemon/crashes/bounded_traceback.h"
#include "daemon/crashes/crash.h"
#include "daemon/os/exit_status.h"
#include "protocol/event_ring.h"

namespace lpd::daemon {

/// WorkerActivity is what one test process (a pytest controller, an xdist
/// worker, a native test binary) told lpd about its tests, on one
/// connection. It exists to pin a crash on the test that was running:
/// test.start arrives before the test's setup and test.finish after its
/// teardown, so a death in between belongs to that test.
class WorkerActivity {
 public:
  WorkerActivity(std::string run_id, std::string worker_id, pid_t pid, uid_t owner, int attempt)
      : run_id_(std::move(run_id)), worker_id_(std::move(worker_id)), pid_(pid), owner_(owner), attempt_(attempt) {}

  /// A test starts: its setup runs until a phase says otherwise.
  /// `ring_position`: where its test.start record began in the process's
  /// event ring, when it came through one (the phase mark names it).
  /// `phase`: the one it starts in; "setup" for pytest's shim (test.start
  /// precedes the fixtures), "call" for a runner whose shim knows no phases
  /// (the native shim: its test_started comes right before the body).
  void test_started(const std::string& nodeid, double now, std::optional<std::uint64_t> ring_position = {},
                    std::string_view phase = "setup");
  /// Reads the phase mark of the event ring this process writes
  /// (protocol::PhaseMark); set once, when its first test.start comes
  /// through a ring.
  using PhaseMarkSource = std::function<std::optional<protocol::PhaseMark>()>;
  void watch_phase_marks(PhaseMarkSource source) { marks_ = std::move(source); }
  bool watches_phase_marks() const { return static_cast<bool>(marks_); }
  /// Takes the phase the mark names now as the running test's phase, for
  /// after the ring is gone (its connection ended).
  void settle_phase() { phase_ = current_phase(); }
  /// test.phase: the running test entered `phase` (setup, call, teardown).
  void phase(const std::string& phase) { phase_ = phase; }
  /// test.phase outside any test: the session entered `phase`
  /// (collection, sessionstart, sessionfinish, exit).
  void session_phase(const std::string& phase) { session_phase_ = phase; }
  void test_finished(const std::string& nodeid);
  /// The process said its session ended cleanly (run.end).
  void clean_end() { clean_end_ = true; }
  /// Text written by faulthandler on the process's traceback connection (bounded).
  void add_traceback(std::string_view text);
  /// A native shim's crash handler named the signal before dying.
  void crash_notice(int signo) { notice_signal_ = signo; }

  /// Decides whether this ending was a crash and, if so, what to record.
  std::optional<Crash> crash_on(const ExitStatus& end, double now) const;

  const std::string& run_id() const { return run_id_; }
  const std::string& worker_id() const { return worker_id_; }
  pid_t pid() const { return pid_; }
  const std::optional<std::string>& current_test() const { return current_; }
  bool ended_cleanly() const { return clean_end_; }
  /// True when nothing says this process crashed beyond its missing clean
  /// end: it ran tests, none was running, and no signal, crash notice or
  /// faulthandler text came. For an xdist worker whose controller told lpd
  /// nothing of its end (no worker.down), that is execnet ending it after
  /// its tests (it interrupts a worker still in its session's end 5 s after
  /// the controller said to exit, before pytest_unconfigure and run.end):
  /// plain `pytest -n 2` reports no crash there, and neither may lpd.
  bool left_after_its_tests_without_a_sign() const {
    return any_test_ && !current_ && !notice_signal_ && traceback_.empty();
  }
  /// The running test's phase ("" when no test runs): the ring's phase
  /// mark when it names this test's test.start, else what test.phase said.
  std::string current_phase() const;
  /// Seconds the running test has run at `now`.
  double running_for(double now) const { return current_ ? now - started_at_ : 0; }
  /// Where a crash outside any test happened: the phase the shim named, else
  /// collection before the first test, exit after a clean session end,
  /// sessionfinish after the last test.
  std::string outside_phase() const;

 private:
  std::string run_id_;
  std::string worker_id_;
  pid_t pid_;
  uid_t owner_;
  int attempt_;
  std::optional<std::string> current_;
  std::string phase_;
  std::optional<std::uint64_t> ring_position_;  // of the running test's test.start
  PhaseMarkSource marks_;
  std::string session_phase_;
  double started_at_ = 0;
  bool any_test_ = false;
  bool clean_end_ = false;
  BoundedTraceback traceback_;
  std::optional<int> notice_signal_;
};

}  // namespace lpd::daemon
