#include "daemon/crashes/worker_activity.h"

namespace lpd::daemon {

void WorkerActivity::test_started(const std::string& nodeid, double now, std::optional<std::uint64_t> ring_position,
                                  std::string_view phase) {
  current_ = nodeid;
  ring_position_ = ring_position;
  phase_ = phase;  // pytest's test.start comes before the setup; test.phase says when it moves on
  session_phase_.clear();  // past collection: a crash between tests is no longer "collection"
  started_at_ = now;
  any_test_ = true;
}

void WorkerActivity::test_finished(const std::string& nodeid) {
  // A finish for another test (a shim that lost a message) still ends ours:
  // the process is between tests now.
  (void)nodeid;
  current_.reset();
  ring_position_.reset();
  phase_.clear();
}

std::string WorkerActivity::current_phase() const {
  if (current_ && ring_position_ && marks_) {
    // The mark is the shim's word in memory it controls: believed only
    // when it names the test.start lpd read last.
    if (const auto mark = marks_(); mark && mark->start_position == *ring_position_) return std::string(mark->phase);
  }
  return phase_;
}

void WorkerActivity::add_traceback(std::string_view text) { traceback_.add(text); }

std::string WorkerActivity::outside_phase() const {
  if (!session_phase_.empty()) return session_phase_;
  if (clean_end_) return "exit";
  return any_test_ ? "sessionfinish" : "collection";
}

std::optional<Crash> WorkerActivity::crash_on(const ExitStatus& end, double now) const {
  std::optional<int> signal = end.signal;
  if (!signal) signal = notice_signal_;
  const std::string traceback = traceback_.text();
  if (!signal) signal = signal_from_traceback(traceback);
  if (!signal && clean_end_) return std::nullopt;  // an ordinary exit, whatever its code

  Crash crash;
  crash.run_id = run_id_;
  crash.worker_id = worker_id_;
  crash.pid = pid_;
  crash.owner = owner_;
  crash.attempt = attempt_;
  crash.signal = signal;
  crash.exit_code = signal ? std::nullopt : end.exit_code;
  crash.traceback = traceback;
  crash.crash_time = now;
  if (current_) {
    crash.nodeid = *current_;
    crash.where = "test";
    crash.phase = current_phase();
    crash.duration = now - started_at_;
  } else {
    // "collection" only when the death came while collecting: a session
    // that ran no test but got past collection (sessionstart, or a clean
    // end and a crash at exit) died in the session, not "during collection".
    crash.phase = outside_phase();
    crash.where = crash.phase == "collection" ? "collection" : "session";
  }
  if (signal) {
    crash.reason = "killed by " + signal_name(*signal);
  } else if (end.exit_code) {
    crash.reason = "exited with code " + std::to_string(*end.exit_code) + " without finishing its session";
  } else {
    crash.reason = "connection closed without a clean session end";
  }
  if (crash.where == "test")
    crash.reason += " while running " + crash.nodeid + (crash.phase.empty() ? "" : " (" + crash.phase + ")");
  else
    crash.reason += crash.where == "collection" ? " during collection" : " outside any test (" + crash.phase + ")";
  return crash;
}

}  // namespace lpd::daemon
