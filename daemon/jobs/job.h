#pragma once

#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include "daemon/os/launcher.h"
#include "daemon/os/leftover_test.h"
#include "daemon/jobs/job_lifecycle.h"
#include "daemon/jobs/runner_adapter.h"

namespace lpd::daemon {

/// The states pytest-relay-run users consume, in order. `collected` only
/// happens for a --collect-only run; `terminating` only after a stop.
enum class JobState { kCreated, kCollected, kInProgress, kTerminating, kDone };

std::string_view to_string(JobState state);
JobState job_state_from_string(std::string_view text);

/// What `lpctl run` asked for.
struct JobSpec {
  std::vector<std::string> argv;
  std::string cwd;
  std::vector<std::string> env;  // K=V, the caller's environment plus --env
  std::string name;
  int retry_crashed = 0;
  int rerun_crashed = 0;       // each crashed test re-run alone up to N times
  bool fail_on_flaky = false;  // a crash that passed on rerun still fails the run
  /// How tests are left out or run alone (see runner_adapter.h): from
  /// --runner, else recognised from argv when the run starts.
  Runner runner = Runner::kNone;
  std::string junit_path;      // written when the job is done (detached runs)
  std::string crash_log_path;  // every crash is appended here too
  bool pause_on_failure = false;
  /// Whom the command runs as (a root lpd runs it as the requesting user).
  std::optional<Credentials> run_as;
  /// the command's output goes to a pseudo-terminal of
  /// this size (lpctl's stdout is a terminal: colours, line buffering);
  /// 0: to the log directly (pipes and files see plain output).
  int terminal_columns = 0;
  int terminal_rows = 0;
  /// The command's stderr goes to its own log (runs/<id>/stderr.log), so a
  /// reader (lpctl run, whose stdout is no terminal) can keep it on its own
  /// stderr; false: stdout and stderr share output.log in the order written,
  /// as a terminal shows them (and as pytest-relay-run's job text has them).
  /// Never with a terminal, which merges them by nature.
  bool separate_stderr = false;

  nlohmann::json to_json() const;
  static JobSpec from_json(const nlohmann::json& j);
};

/// Job is the supervised command of a run and its attempts: the first run
/// of the command, each re-run with the crashed tests left out, and each
/// crashed test re-run alone. Its rules are job_lifecycle.h's.
struct Job {
  JobSpec spec;
  JobState state = JobState::kCreated;
  int attempt = 0;                   // 1-based once started
  AttemptKind attempt_kind = AttemptKind::kFull;
  std::string attempt_only;          // kIsolatedRerun: the test it runs
  AttemptPlan plan;                  // retries and reruns: what is left out, what comes next
  /// Some connection of the run sent test.start: the command reports tests.
  bool tests_reported = false;
  /// Some shim joined the run (run.register): a command without tests
  /// reported then ran an lpd shim that saw none run (not a plain command).
  bool shim_joined = false;
  /// How the last run of the command itself ended (isolated reruns aside).
  std::optional<int> command_exit_code;
  std::optional<int> command_signal;
  bool stop_requested = false;
  pid_t monitor_pid = 0;
  std::uint64_t monitor_start_time = 0;
  std::optional<int> returncode;  // of the final attempt, crashes folded in
  std::optional<int> signal;      // the final attempt died by this signal
  std::string text;               // a human line about the latest state change
  /// Files lpd could not write for the user (--junit, --crash-log), one
  /// message each; lpctl prints them and exits non-zero.
  std::vector<std::string> report_errors;
  // -- processes the command left running ----------------
  /// "pid P: ARGV" for each process lpd-monitor found running once the
  /// command had ended, over all attempts (at most kMaxLeftRunning); they
  /// were killed. Said in the run's text and lpd's log.
  std::vector<std::string> left_running;
  static constexpr std::size_t kMaxLeftRunning = 100;
  /// the same processes with the test each started in, for tools
  /// (run.info's "left_running_processes") and the JUnit (<system-err> of
  /// that test). At most kMaxLeftRunning.
  std::vector<LeftProcess> left_running_processes;
  double created_at = 0;
  double ended_at = 0;

  /// {"id", "state", "returncode", "text"}: pytest-relay-run's job payload.
  nlohmann::json payload(const std::string& run_id) const;
  nlohmann::json to_json() const;
  static Job from_json(const nlohmann::json& j);

  /// pytest's --collect-only (--co): the command runs no test on purpose,
  /// so none of those it collected "never ran". Its state is `collected`
  /// only until the job is done, hence the argv too.
  bool collect_only() const;

  /// The command line of the current attempt, from the runner's adapter:
  /// the tests that crashed so far left out, or the rerun's test alone.
  std::vector<std::string> attempt_argv() const;
};

/// The exit code `lpctl run` ends with when nothing but crashes is known:
/// the command's own code, 128+N for a signal death, and at least 1 when
/// any test crashed (final_returncode(const FinalFacts&) in full).
int final_returncode(std::optional<int> exit_code, std::optional<int> signal, bool any_crash);

}  // namespace lpd::daemon
