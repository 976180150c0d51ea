#pragma once

#include <functional>
#include <list>
#include <map>
#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <unordered_set>
#include <string>
#include <tuple>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/core/access.h"
#include "daemon/crashes/crash_store.h"
#include "daemon/crashes/worker_activity.h"
#include "daemon/core/defer_reply.h"
#include "daemon/core/operation.h"
#include "daemon/core/event_bus.h"
#include "daemon/os/exit_watch.h"
#include "daemon/os/launcher.h"
#include "daemon/logs/log_tail.h"
#include "daemon/os/pidfd_watch.h"
#include "daemon/reports/test_result.h"
#include "daemon/jobs/console_echo.h"
#include "daemon/jobs/job.h"
#include "daemon/jobs/run_output_cap.h"
#include "daemon/jobs/shim_fields.h"
#include "daemon/runs/run_registry.h"
#include "daemon/core/state_store.h"
#include "daemon/core/unique_fd.h"
#include "daemon/runs/run_watcher.h"
#include "daemon/runs/session_drain.h"
#include "daemon/os/heap_trim.h"

namespace lpd::daemon {

/// Where JobService finds the pieces it starts: the monitor binary, the
/// pytest shim it puts on PYTHONPATH, and the socket the shim calls back on.
struct JobEnvironment {
  std::string monitor_path;
  std::string python_shim_dir;
  std::string socket_path;
  /// how much disk run outputs may take (--run-output-max, --run-outputs-per-user-max).
  RunOutputLimits run_output;
};

/// JobService supervises `lpctl run`: it starts each attempt of a command
/// under lpd-monitor, streams its output to attached clients, hears from
/// the shims which test each process is running, turns abnormal endings
/// into crash records pinned on that test, re-runs without crashed tests,
/// and builds the JUnit report. Its rules live in Job, WorkerActivity and
/// junit_report; this class is their I/O edge.
class JobService : public RunWatcher {
 public:
  /// `crashes` is loaded before restore() (see Daemon::restore_state).
  /// `drain`: the back-edge to the connection layer (session_drain.h),
  /// used before a process's end is judged.
  JobService(boost::asio::io_context& io, EventBus& events, const StateStore& store, CrashStore& crashes,
             RunRegistry& runs, ProcessLauncher& launcher, const AccessPolicy& access, JobEnvironment environment,
             SessionDrain& drain);

  // Operations (see protocol/README.md); job_ops.cpp decodes their fields.
  /// Starts supervised run (run.start) of `spec` (decoded and checked by
  /// job_spec_of) for `caller`, who owns it; a root lpd runs the command as
  /// them. Returns {"run_id", "log", "job", "stderr_log"?}. Throws not_found
  /// or permission_denied (the command, as the caller), permission_denied /
  /// bad_request (a report file the caller cannot write), unavailable (the
  /// state directory), internal (the launch).
  json start(JobSpec spec, const Peer& caller);
  /// Where a run.attach starts reading: byte offsets into output.log and
  /// stderr.log (non-negative, checked by the decoder).
  struct AttachFrom {
    std::int64_t offset = 0;
    std::int64_t stderr_offset = 0;
  };
  /// Follows supervised run `run_id`'s output for the connection `sink`
  /// (session `session`) (run.attach): answers through `defer` with
  /// {"run_id", "job", "log", "stderr_log"?, "output_dropped_bytes"?}, then
  /// pushes run.output from `from` on, paced by the reader, and run.done
  /// once the run is done and its output read; returns null (the reply is
  /// deferred). Throws not_found, limit_exceeded (the connection's streams).
  json attach(const std::string& run_id, AttachFrom from, const std::shared_ptr<ReplySink>& sink,
              std::uint64_t session, const DeferReply& defer);
  /// Stops supervised run `run_id` (run.stop): `signal` (SIGINT, SIGTERM or
  /// SIGHUP) to its command's process group, SIGKILL after `grace` seconds
  /// (default 10). Returns {"run_id", "job"}. Throws not_found, conflict
  /// (already done), bad_request (another signal).
  json stop(const std::string& run_id, std::optional<double> grace, std::int64_t signal);
  /// The JUnit XML of supervised run `run_id` (run.report), merged across
  /// workers and retries: the piece from `offset` of at most `limit` bytes
  /// (and kReportPieceBytes), never cut inside a UTF-8 sequence, as
  /// {"run_id", "junit", "offset", "total", "next", "tests", "crashes"}.
  /// Without an offset the whole report, or too_large past one piece.
  /// Throws not_found, bad_request (offset, limit).
  json report(const std::string& run_id, std::optional<std::int64_t> offset, std::optional<std::int64_t> limit);
  /// At most this much XML a report piece: JSON escaping at most doubles it
  /// (quotes, newlines; XML carries no other control characters), so a
  /// reply stays far below the protocol's 1 MiB line.
  static constexpr std::int64_t kReportPieceBytes = 256 * 1024;
  /// At most this much encoded crash records (tracebacks left out) in a
  /// run.done push; the rest are counted in its `crashes_omitted`.
  static constexpr std::size_t kDoneCrashBytes = 256 * 1024;
  /// At most this many nodeids of each of a plan's lists in run.info (the
  /// rest counted in "<list>_total"): with nodeids of up to 16 KiB, 20 of
  /// each stay far under the protocol's line.
  static constexpr std::size_t kInfoNodeids = 20;
  /// Supervised run `run_id`'s job (run.info): state, attempts, returncode,
  /// argv, cwd, tests and crashes counted, its log(s) and how much of them
  /// the cap dropped. Throws not_found.
  json info(const std::string& run_id);
  /// The owner of supervised run `run_id`, for the dispatcher's gates
  /// (run.attach, run.info, run.report, run.stop). Throws not_found.
  uid_t owner_of(const std::string& run_id) const;
  // Notifications from shims, decoded by shim_ops.cpp (shim_fields.h).
  // Each but traceback.attach is for a connection that said run.register:
  // from any other `peer` it throws bad_request ("<op> before run.register
  // on this connection"), except collection.finish, which is then ignored.
  /// test.start: `peer`'s process starts `start.nodeid`; published as a
  /// test.start event. Read from the event ring, its record's position is
  /// what the ring's phase mark names while the test runs.
  void test_started(const Peer& peer, TestStart start);
  /// test.finish: `result` (worker_id and attempt filled here) is kept,
  /// moved, and published as a test.finish event.
  void test_finished(const Peer& peer, TestResult result);
  /// crash.notice: a native crash handler in `peer`'s process caught `signo`.
  void crash_noticed(const Peer& peer, int signo);
  /// worker.down: an xdist controller reaped one of its workers: that
  /// process's end is settled with the status the controller saw.
  void worker_down(const Peer& peer, const WorkerDown& down);
  /// worker.results / worker.crashed: an xdist controller's copy of what a
  /// dead worker reported, and the test xdist says it was running. lpd
  /// keeps only what it lacks: the worker may have died while lpd was away
  /// (restarted), its unsent messages with it.
  void worker_results(const Peer& peer, WorkerResults told);
  void worker_crashed(const Peer& peer, const WorkerCrashed& told);
  /// collection.finish: a controller collected `count` tests (room is made
  /// for their results); a --collect-only run steps to `collected`
  /// (JobEvent::kCollected). Ignored from an unregistered connection or a
  /// run not in progress.
  void collection_finished(const Peer& peer, std::int64_t count);
  /// traceback.attach: `sink`'s connection carries `peer`'s process's
  /// faulthandler text from now on, echoed to the stderr descriptor passed
  /// with the message, if any (true when there is one to echo to). Throws
  /// bad_request when the connection cannot carry a raw stream.
  bool attach_traceback(const Peer& peer, ReplySink& sink);
  /// test.phase: the running test's (or the session's) phase.
  void phase_changed(const Peer& peer, const PhaseChange& change);
  /// session.error: a failure or crash outside any test, kept as a result
  /// (`error`, worker_id and attempt filled here) and published as a
  /// test.finish event marked session_error.
  void session_error(const Peer& peer, TestResult error);
  /// runs/<id>/ file of a run's collected nodeids: one JSON array a line.
  static constexpr std::string_view kCollectedFile = "collected.jsonl";
  /// At most this many collected nodeids per run (memory and the file).
  static constexpr std::size_t kMaxCollectedPerRun = 1'000'000;
  /// And at most this many bytes of them (a nodeid may be 16 KiB): a shim
  /// cannot grow lpd's memory or state directory by gigabytes this way.
  static constexpr std::size_t kMaxCollectedBytesPerRun = 64 * 1024 * 1024;
  /// collection.items: nodeids a process collected, each kept once per run
  /// (at most a million).
  void collected(const Peer& peer, std::vector<std::string> nodeids);

  // RunWatcher: a shim's connection joined a run (run.register) or said run.end.
  void worker_joined(const Run& run, const std::string& worker_id, const Peer& peer) override;
  void worker_ended_cleanly(const Peer& peer) override;
  /// A run lpd does not supervise ended: its workers that left after their
  /// tests without a sign of a crash, their controller silent, are let go
  /// (let_go_untold_worker).
  void run_ended(const Run& run) override;
  /// A connection closed: its run.attach streams end, and a shim's activity
  /// waits (Pending) until its process's end is known (settle_end); one
  /// that ended cleanly between tests of a run lpd does not supervise is
  /// let go (lpd never learns that process's exit status).
  void peer_gone(const Peer& peer);
  /// Ends the run.attach streams of a connection that closed.
  void drop_attaches(std::uint64_t session);
  /// One pass over runs/: each run's job.json; for an unfinished job also
  /// its events.jsonl (its results so far) and its crashes (from the
  /// CrashStore's index), then re-adopts its monitor. An ended run's
  /// results stay on disk until asked for (load_history).
  void restore();
  /// lpd is stopping: one last try at every run's state a full disk
  /// refused (job.json, run.json), what still fails logged as lost with
  /// this lpd.
  void last_try();
  /// lpd is stopping, after last_try() and the journals: one last try at a
  /// done run's junit.xml the disk refused. Last, because the next lpd
  /// renders it again from the journal, job.json and the crash records,
  /// while nothing renders those (a stop on a full disk spent the freed
  /// reserve on two 64 KiB reports and lost the events journal's run.ended).
  void last_try_reports();


  /// Retention removed these runs: everything lpd held of them leaves
  /// memory (their job, spec and environment: about 70 KB a run with a
  /// 60 KB environment, kept until lpd stopped), their outputs no longer
  /// count towards their owners' totals, and from now on every operation
  /// on them answers not_found, never a report rebuilt from files that are
  /// gone (an empty, passing JUnit). A reader still attached gets run.done
  /// at once.
  void forget_runs(const std::set<std::string>& run_ids);

 private:
  /// Drains (SessionDrain) every connection whose activity `matches`:
  /// collected first, as draining dispatches messages into activities_.
  void drain_sessions_where(const std::function<bool(const WorkerActivity&)>& matches);
  /// One run.attach: its output tail, paced by the peer's reading. Erased
  /// once run.done is sent or the peer leaves (drop_attaches): a weak sink
  /// left behind would pin the closed connection's memory.
  struct Attached {
    /// One of the run's logs this reader follows: output.log, and
    /// stderr.log for a run that keeps stderr apart.
    struct Stream {
      OutputStream stream = OutputStream::kStdout;
      std::shared_ptr<LogTail> tail;
      std::shared_ptr<OutputGaps> gaps;  // what this reader jumped over
    };
    std::weak_ptr<ReplySink> sink;
    std::vector<Stream> streams;  // empty once run.done was sent
    std::uint64_t session = 0;
    ReplySink::StreamSlot slot;
    std::size_t unfinished = 0;  // streams still draining towards run.done
    bool reading() const { return !streams.empty(); }
  };
  /// Everything lpd holds about one supervised run while it lives.
  struct Supervised {
    std::string run_id;
    uid_t owner = static_cast<uid_t>(-1);
    Job job;
    std::shared_ptr<ExitWatch> monitor_watch;     // our child
    std::shared_ptr<ExitWatch> readopted_watch;   // after a restart
    std::unique_ptr<boost::asio::steady_timer> kill_timer;
    std::list<Attached> attached;  // a list: finish callbacks hold pointers into it
    std::vector<TestResult> results;
    std::size_t failure_text_bytes = 0;  // kept in `results` (keep_within_budget)
    std::vector<Crash> crashes;
    std::vector<std::string> collected;        // collection.items, each nodeid once
    std::unordered_set<std::string> collected_index;  // hashed: every xdist worker lists the whole suite
    std::size_t collected_bytes = 0;                  // of the nodeids in `collected`
    bool collected_full = false;                      // a bound was reached (said once)
    /// How many results the run had when each test crashed (this lpd's
    /// lifetime): a passed result of it after that mark, in the same
    /// attempt, is a rerun (pytest-rerunfailures re-running an xdist
    /// worker's crashed test in a new worker, whose shim counts no rerun).
    std::map<std::string, std::size_t> results_at_crash;
    /// The results an xdist controller's worker.results gave for a worker
    /// (attempt, worker id, nodeid) that the worker itself has not: a
    /// worker that ended while lpd was away hands its own copies over
    /// later, when lpd is back (its last flush), and they are the same
    /// tests: recorded once. An entry goes when the worker's copy comes.
    std::set<std::tuple<int, std::string, std::string>> told_by_controller;
    /// The JUnit of a done run, rendered once: run.report hands a large one
    /// out in many pieces.
    std::optional<std::string> junit_cache;
    /// A running run's report as rendered for the last run.report at offset
    /// 0, and its number (`snapshot`): the later pieces come from the same
    /// text, so a report read while tests still end is whole and valid XML
    /// (each render differs: new results, durations up to now).
    std::optional<std::string> active_report;
    std::uint64_t active_report_snapshot = 0;
    /// False for a run that had ended before this lpd started, or whose
    /// results left memory after it ended (unload_history): `results` and
    /// `crashes` are empty until load_history() reads them.
    bool history_loaded = true;
    /// What info and report tell of a run whose results left memory, without
    /// reading them back: its testcases and crashes when they left.
    struct Counts {
      std::size_t tests = 0;
      std::size_t crashes = 0;
    };
    std::optional<Counts> unloaded_counts;
    /// runs/<id>/junit.xml holds the done run's report (write_done_report).
    bool report_written = false;
    /// load_history() found that the run's journal stopped keeping events
    /// (RunJournal::kEventsNotKept): the results read back lack the later ones.
    bool results_cut = false;
    /// Fires kKeepDoneResults after the end: the results then leave memory.
    std::unique_ptr<boost::asio::steady_timer> unload_timer;
    /// False while `job` is a stand-in (state done, nothing else) for a job
    /// whose job.json said done at restore; load_history() reads it whole.
    bool job_loaded = true;
  };
  /// A process's activity once its connection is gone but its end is not
  /// yet known: finalized by worker.down, the attempt's end, or its pidfd.
  struct Pending {
    WorkerActivity activity;
    std::optional<ExitStatus> end;
    std::shared_ptr<ExitWatch> watch;
  };

  /// The not_found error for `run_id`, which lpd does not supervise: one
  /// that saying so when the run exists but was not started by run.start.
  protocol::Error not_supervised(const std::string& run_id) const;
  /// The run as it is in memory (its history maybe not loaded). Throws not_found.
  Supervised& known(const std::string& run_id);
  /// The run, its history loaded (load_history). Throws not_found.
  Supervised& supervised(const std::string& run_id);
  /// Fills `job` from job.json, `results` from the run's journal
  /// (events.jsonl, one pass) and `crashes` from the CrashStore, once, for
  /// a run restored as ended.
  void load_history(Supervised& s);
  /// Appends s.collected from index `from` on to the run's kCollectedFile
  /// (a failed write is logged: the run goes on).
  void keep_collected(const Supervised& s, std::size_t from);
  /// Adds `nodeid` to s.collected unless it is there already or the run's
  /// bounds (kMaxCollectedPerRun, kMaxCollectedBytesPerRun) are reached
  /// (logged once). False once they are: nothing more is taken.
  bool add_collected(Supervised& s, std::string nodeid);
  /// How long a done run's results stay in memory: the requests that follow
  /// a run's end (lpctl run --junit, a CI step's lpctl report) find them
  /// there; later ones read the report lpd wrote (runs/<id>/junit.xml).
  static constexpr std::chrono::seconds kKeepDoneResults{10};
  /// Why a run's report lacks results lpd had (Supervised::results_cut).
  static constexpr std::string_view kResultsNotKept =
      "lpd kept no more of this run's events on disk past its limit (lpd start --run-events-max or "
      "--run-events-per-user-max) and was restarted before the run's report was written: results that came after "
      "the limit may be missing from this report";
  /// Arms s.unload_timer; when it fires, unload_history(s).
  void unload_history_later(Supervised& s);
  /// Writes the done run's JUnit to runs/<id>/junit.xml and drops its
  /// results, crashes, collected nodeids and report cache from memory (they
  /// are on disk: the run's journal, the crash store, that file). Keeps them
  /// when the file cannot be written, or while an attach is still draining.
  void unload_history(Supervised& s);
  /// The run's JUnit as it stands at `now` (wall clock, seconds; the end
  /// for a done run): its results, crashes and collected nodeids are lent
  /// to junit_report, not copied, and given back however it ends.
  std::string render_junit(Supervised& s, double now);
  /// Writes the done run's report (junit_cache, rendered if need be) to
  /// runs/<id>/junit.xml; false, logged, when the state directory refuses.
  bool write_done_report(Supervised& s);
  Supervised* find(const std::string& run_id);
  /// Writes runs/<id>/job.json. A refusal (full disk, EIO) is logged once
  /// and the run's job.json and run.json are written again every
  /// kPersistRetry until they go in (unwritten): a restarted lpd must not
  /// find a run it saw end still running, and judge it again.
  void persist(const Supervised& s);
  /// runs/<id>/run.json of `run_id` from the registry; refused, as persist's.
  void persist_run(const std::string& run_id);
  /// `run_id`'s state files were refused (`what` failed because of `why`):
  /// logged the first time, then retried on persist_retry_.
  void unwritten(const std::string& run_id, const std::string& what, const std::string& why);
  void arm_persist_retry();
  /// One try at every job.json / run.json waiting in unpersisted_.
  void write_unpersisted();
  static constexpr std::chrono::milliseconds kPersistRetry{1000};
  void set_state(Supervised& s, JobState state, std::string text);
  /// The lifecycle row (job_step) for `event` in `s`'s job's state; none is
  /// logged as the impossible case it is (the caller leaves the state alone).
  std::optional<JobTransition> lifecycle_row(const Supervised& s, JobEvent event,
                                             AttemptVerdict verdict = AttemptVerdict::kAny) const;
  /// Steps `s`'s job through the lifecycle table (job_step) on `event`:
  /// the state the row names, with `text`, and the row. With no row the
  /// state is left as it is, logged as the impossible case it is, and
  /// nullopt returned.
  std::optional<JobTransition> step_job(Supervised& s, JobEvent event, std::string text,
                                        AttemptVerdict verdict = AttemptVerdict::kAny);
  void start_attempt(Supervised& s);
  void attempt_ended(const std::string& run_id);
  /// logs and keeps lpd-monitor's "left_running"
  /// (processes the command left behind, which the monitor killed).
  void note_left_running(Supervised& s, const json& status);
  /// Ends the job: its final exit code, reports and run.done; its state
  /// becomes `step`'s (a kFinish row of the lifecycle).
  void finish_job(Supervised& s, const JobTransition& step, std::optional<int> exit_code, std::optional<int> signal);
  /// Removes runs/<run_id> of a run whose start failed before its command
  /// ran (never following a link); logs what it could not remove.
  void forget_unstarted(const std::string& run_id);
  /// Applies the job lifecycle (job_lifecycle.h) to an ended attempt: the
  /// crash of a command that reported no tests, flaky crashes, then the
  /// next rerun, retry, or the end. `crashes_before`: s.crashes' size when
  /// the attempt's ends began to be settled; `command_pid`: the command's
  /// pid from lpd-monitor's status (0 if unknown).
  void after_attempt(Supervised& s, const ExitStatus& end, std::size_t crashes_before, pid_t command_pid);
  /// The one testcase of a command that reported no tests: its exit as a
  /// result, and its signal death as a crash of it (unless a crash was
  /// already recorded for this end, or the run was stopped).
  void command_result(Supervised& s, const ExitStatus& end, bool no_crash_yet, pid_t command_pid);
  /// What the final exit code depends on (job_lifecycle.h's FinalFacts).
  FinalFacts final_facts(const Supervised& s) const;
  /// The one owner of a test process's end: every way an end becomes known
  /// (finalize: worker.down, the attempt's end, an unsupervised process's
  /// pidfd; attempt_ended: a controller still connected) comes here to be
  /// judged (WorkerActivity::crash_on, worker_end_verdict): a crash record,
  /// an interrupted result for the test it ran, or nothing. The command's
  /// own end, when no test process reported, is command_result's.
  void settle_end(Supervised* s, const WorkerActivity& activity, const ExitStatus& end);
  /// Sets `flaky` on every crash of the run whose test passed when run
  /// again later (an isolated rerun, a retry, a pytest-rerunfailures rerun).
  void mark_flaky_crashes(Supervised& s);
  /// A result lpd itself makes (an interrupted test), or one an xdist
  /// controller told (`told_by_controller`): kept and published as a
  /// test.finish event, so a restarted lpd reads it back. A told one's
  /// event carries "told_by_controller": true, so a restarted lpd also
  /// knows to drop the worker's own copy should it come later.
  void add_result(Supervised& s, TestResult result, bool told_by_controller = false);
  /// LPD_DESELECT_FILE and LPD_ONLY_NODEIDS_FILE of the current attempt,
  /// in the run's directory, readable by the run's user.
  void write_selection_files(const Supervised& s) const;
  /// The one owner of crash records: every crash lpd records comes here
  /// (from settle_end, command_result, attempt_ended and worker.crashed,
  /// made by WorkerActivity::crash_on or crash_rules.h). A death recorded
  /// before (CrashStore::find_same) is not recorded again; a new one goes
  /// to the store (crashes.jsonl), the run's --crash-log, a `crash` event
  /// and `s`'s copy. `s` is null for a run lpd does not supervise.
  void record_crash(Supervised* s, Crash crash);
  /// Whether passed result `r` (an element of s.results) was followed, in
  /// its attempt, by a crash of its test: the process died in it after
  /// reporting it passed, so it is no pass (not a flaky crash's proof).
  static bool passed_then_crashed(const Supervised& s, const TestResult& r);
  void finalize(Pending& pending, const ExitStatus& end);
  /// Whether `pending` is an xdist worker gone after its tests with no sign
  /// of a crash and no word from its controller (no worker.down): its
  /// controller alone could say it crashed.
  static bool untold_worker(const Pending& pending);
  /// Lets such a worker go as no crash (logged), at its run's end: true
  /// when `pending` was one (it is spent then).
  bool let_go_untold_worker(Pending& pending);
  void finalize_pending_of(const std::string& run_id, const std::optional<ExitStatus>& controller_end);
  void send_done(Supervised& s, Attached& a);
  /// Reads the rest of each of `a`'s logs, then send_done once all are read.
  void finish_attach(Supervised& s, Attached& a);
  /// A report file lpd could not write for the run's user: logged, kept in
  /// the job (run.info) and sent with run.done, so lpctl prints it.
  void report_error(Supervised& s, std::string message);
  /// Writes the command's environment for lpd-monitor (NUL-separated,
  /// 0600, in the run's directory; the monitor removes it). Throws
  /// protocol::Error(kInternal).
  static void write_env_file(const std::string& path, const std::vector<std::string>& env);
  /// appends `banner` (attempt_banner) to the run's log `log_fd`
  /// (at `path`), after a newline when the log does not end with one;
  /// nothing for "". A failed write is logged, never thrown.
  static void write_attempt_banner(int log_fd, const std::string& path, const std::string& banner);
  /// Opens (creating, 0600) the run's output log for the monitor to inherit,
  /// owned by `owner` when set. Throws protocol::Error(kInternal).
  static UniqueFd open_output_log(const std::string& path, const std::optional<Credentials>& owner);
  /// lpd-monitor's status file, read as untrusted (bounded, no links, no
  /// FIFOs); nullopt when it is missing or not a JSON object.
  std::optional<json> read_exit_status(const std::string& run_id) const;
  /// runs/<id>/output.log, or stderr.log for OutputStream::kStderr.
  std::string output_path(const std::string& run_id, OutputStream stream = OutputStream::kStdout) const;
  std::string status_path(const std::string& run_id) const;
  WorkerActivity* activity_of(const Peer& peer);
  /// The activity of `peer`'s run.register; throws bad_request naming `op`
  /// when the connection never registered. Never null.
  WorkerActivity* registered(const Peer& peer, const char* op);
  std::vector<std::string> child_environment(const Supervised& s) const;

  boost::asio::io_context& io_;
  EventBus& events_;
  const StateStore& store_;
  CrashStore& crashes_;  // every crash record; Supervised::crashes copies a run's own
  RunRegistry& runs_;
  ProcessLauncher& launcher_;
  const AccessPolicy& access_;
  JobEnvironment environment_;
  SessionDrain& drain_;
  std::mt19937 random_{std::random_device{}()};

  std::map<std::string, std::unique_ptr<Supervised>> jobs_;
  /// Failure text (keep_within_budget) of each active run lpd does not
  /// supervise, by run id: a supervised run counts its own in Supervised,
  /// and without this a run started as plain `pytest` with the shim wrote
  /// every result's 64 KiB texts to both journals without end (stop 35's
  /// attack: 946 MB of state in 4.5 s). Forgotten at the run's end; a
  /// restarted lpd counts an active one's from zero again.
  std::map<std::string, std::size_t, std::less<>> unsupervised_failure_text_;
  std::map<std::uint64_t, WorkerActivity> activities_;  // by session id
  std::map<pid_t, BoundedTraceback> tracebacks_;         // by pid, from traceback connections
  std::vector<std::unique_ptr<Pending>> pending_;
  std::set<std::string> unpersisted_;  // runs whose job.json / run.json wait for room
  boost::asio::steady_timer persist_retry_;
  /// Hands the heap runs' results took back once runs stop ending.
  QuietHeapTrim heap_trim_;
  RunOutputCap output_cap_;  // after what its callback uses
};

}  // namespace lpd::daemon
