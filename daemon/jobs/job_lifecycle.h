#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/crashes/worker_activity.h"

namespace lpd::daemon {

enum class JobState;  // daemon/jobs/job.h

/// What one attempt of a job runs: the whole command, the command again
/// without the tests that crashed (--retry-crashed), or one crashed test
/// alone in a new process (--rerun-crashed).
enum class AttemptKind { kFull, kRetry, kIsolatedRerun };
std::string_view to_string(AttemptKind kind);
AttemptKind attempt_kind_from_string(std::string_view text);

/// What can happen to a job.
enum class JobEvent {
  kStarted,        // its first attempt was spawned
  kCollected,      // a --collect-only run finished collecting
  kStopRequested,  // lpctl stop, or Ctrl-C on lpctl run
  kAttemptEnded,   // the attempt's monitor is gone (its status read)
  kStartFailed,    // an attempt could not be spawned (the launch or the state directory failed)
};
std::string_view to_string(JobEvent event);

/// What the rules make of an ended attempt (see AttemptPlan::attempt_ended).
enum class AttemptVerdict {
  kAny,          // table rows that do not look at the verdict
  kStopped,      // a stop was asked for: nothing more runs
  kRerunDue,     // a crashed test is re-run alone next
  kRetryDue,     // the command runs again without the crashed tests
  kNothingMore,  // the job is over
};

/// What JobService must do after a transition (the I/O part).
enum class JobAction {
  kNone,
  kSignalStop,   // SIGINT to the monitor now, SIGKILL after the grace
  kStartRerun,   // spawn the next isolated rerun (AttemptPlan::next_rerun)
  kStartRetry,   // spawn the command without every crashed test
  kFinish,       // final exit code, reports, run.done
};

/// One row of the job lifecycle.
struct JobTransition {
  JobState from;
  JobEvent event;
  AttemptVerdict verdict;
  JobState to;
  JobAction action;
};

/// The job lifecycle in one table, as ProcessRegistry's: an (state, event,
/// verdict) missing from it changes nothing (a stop of a finished job); every
/// state change of a job is a row of it (JobService never sets one itself).
std::span<const JobTransition> job_lifecycle();
std::optional<JobTransition> job_step(JobState from, JobEvent event, AttemptVerdict verdict = AttemptVerdict::kAny);

/// What an ended attempt tells the rules.
struct AttemptReport {
  AttemptKind kind = AttemptKind::kFull;
  bool stopping = false;
  std::vector<std::string> crashed;  // nodeids of the test crashes recorded in it
  std::string only;                  // kIsolatedRerun: the test it ran
  bool only_passed = false;          // kIsolatedRerun: that test passed
};

/// AttemptPlan is the bookkeeping of --retry-crashed and --rerun-crashed,
/// kept in the job (job.json) so an lpd restart goes on with the same plan.
/// After an attempt of the command, each newly crashed test is re-run alone
/// (up to rerun_crashed times, until it passes); then, if retries are left,
/// the command runs again without every test that crashed so far.
struct AttemptPlan {
  int retry_crashed = 0;
  int rerun_crashed = 0;
  int retries_done = 0;
  std::vector<std::string> excluded;     // every test that crashed in a run of the command
  std::vector<std::string> rerun_queue;  // crashed tests waiting for an isolated rerun
  std::map<std::string, int> reruns_done;
  std::vector<std::string> passed_on_rerun;  // flaky: crashed, then passed alone
  bool retry_pending = false;  // a retry follows once the reruns are done

  /// Applies an ended attempt and says what comes next.
  AttemptVerdict attempt_ended(const AttemptReport& report);
  /// The test the next isolated rerun runs (front of the queue); "" if none.
  std::string next_rerun() const;

  nlohmann::json to_json() const;
  static AttemptPlan from_json(const nlohmann::json& j);
};

/// What became of a test process whose end lpd judged (WorkerActivity::crash_on).
enum class WorkerEndVerdict { kNothing, kCrash, kInterrupted };

/// A process that ended while its job was being stopped, by the stop's own
/// signals (SIGINT, SIGTERM, SIGHUP, SIGKILL) or without a clean session
/// end, was interrupted: the test it ran is `interrupted`, never a crash
/// and never passed. Any other signal (SIGSEGV during a stop) is a crash.
WorkerEndVerdict worker_end_verdict(bool crash_found, bool stopping, std::optional<int> signal);

/// Everything the final exit code of `lpctl run` depends on.
struct FinalFacts {
  std::optional<int> exit_code;  // of the last run of the command (not of isolated reruns)
  std::optional<int> signal;     // ...or the signal it died of
  bool stopped = false;          // lpctl stop / Ctrl-C
  int interrupted_tests = 0;
  int test_crashes = 0;          // crashes pinned on a test that never passed again
  int flaky_crashes = 0;         // crashes pinned on a test that passed when re-run
  int outside_crashes = 0;       // crashes outside any test (collection, session end, exit)
  std::optional<int> outside_signal;  // the signal of the first of them
  int session_errors = 0;        // session.error from a shim
  int failed_tests = 0;          // final outcome failed or error
  int never_ran = 0;             // collected tests without any outcome
  bool results_lost = false;     // a process died while lpd was away: some of never_ran may have run
  /// lpd kept no more of the run's events past its journal limit and was
  /// restarted: some of never_ran may have run (their results are not kept).
  bool results_cut = false;
  bool fail_on_flaky = false;
};

/// The exit code `lpctl run` ends with:
/// - the command's own code, 128+N for a signal death;
/// - a stopped run with interrupted tests is never 0 (1);
/// - a crash outside tests or a session error turns 0 and pytest's 5 ("no
///   tests ran") into 128+N for a signal death, else 1;
/// - a test crash that never passed again turns 0 into 1;
/// - flaky crashes alone (crashed, then passed re-run): 0, even when the
///   command's own code was the crash's (it died of that signal, or xdist
///   exited 1 with no test failed), as long as every collected test ran;
///   with --fail-on-flaky they count as crashes.
int final_returncode(const FinalFacts& facts);

/// The done run's one-line verdict (job text, run.done's `text`, the end
/// of `lpctl run`): how the command's last full run ended ("its last full
/// run" when there were `attempts` > 1, "killed by SIGSEGV" for a signal),
/// its `crashes` and the flaky, interrupted and never-run counts, and when
/// `returncode` (final_returncode's) is not the command's own, that code
/// with the reason final_returncode had. `signal_is_verdict`: lpctl ends
/// by the signal itself (its code then needs no saying).
std::string run_verdict_text(const FinalFacts& facts, int returncode, bool signal_is_verdict, int attempts,
                             std::size_t crashes);

}  // namespace lpd::daemon
