#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "daemon/core/operation.h"
#include "daemon/core/event_bus.h"
#include "daemon/processes/ensure_outcome.h"
#include "daemon/os/kill_job.h"
#include "daemon/os/launcher.h"
#include "daemon/logs/log_cap.h"
#include "daemon/logs/log_stream.h"
#include "daemon/logs/pattern.h"
#include "daemon/logs/pattern_wait.h"
#include "daemon/os/exit_watch.h"
#include "daemon/processes/process_lease.h"
#include "daemon/processes/process_registry.h"
#include "daemon/core/state_store.h"
#include "daemon/core/unique_fd.h"

namespace lpd::daemon {

/// One `ensure` as the service needs it, after the handler checked fields.
struct EnsureRequest {
  std::string name;
  std::string scope;    // "" or a normalized absolute directory (normalize_scope)
  std::string pattern;  // "": ready as soon as it is spawned
  std::vector<std::string> argv;
  std::string cwd;
  std::vector<std::string> env;  // the whole environment, "K=V"
  double timeout = 120;
  std::int64_t max_read_lines = 0;
  bool restart = false;
  bool keep_on_timeout = false;
  std::optional<Credentials> credentials;
  uid_t owner = 0;
  bool lease = false;          // the connection `session` holds the helper
  double linger = 0;           // a leased helper outlives its last holder this long
  std::uint64_t keep_logs = 5; // starts whose logs are kept
  std::uint64_t session = 0;   // the caller's connection
  /// reuse or join only; never start (then the answer is
  /// EnsureOutcome::kNotRunning). Lets a client leave its environment out
  /// of the common call, the reuse, and send it only when a start is due.
  bool only_if_running = false;

  ProcessKey key() const { return {owner, scope, name}; }
};

/// ProcessService is the I/O edge of supervised helpers: it glues the
/// registry's rules to the launcher, the pidfd watches, the log tail and
/// pattern wait, the timers, the state files (procs/STEM.json), the logs
/// (logs/STEM.START.log, the last keep_logs starts'), the leases and the
/// event bus (process.starting|ready|exited|killed|lost). Stopping lpd
/// leaves every helper running; restore() re-adopts them on the next start.
class ProcessService {
 public:
  static constexpr double kDefaultGraceSeconds = 5;
  /// After an lpd restart no connection holds anything: a leased helper is
  /// given at least this long for its holders to lease it again.
  static constexpr double kRestoreLeaseGraceSeconds = 30;
  /// `proc.logs` without -n sends at most this much (the newest part).
  static constexpr std::uint64_t kMaxLogReplyBytes = 32ull * 1024 * 1024;

  /// how an ensure was answered: whether this call started the
  /// helper, joined a start under way or reused a ready one, and in which
  /// fields (ensure_differences) a joined or reused helper differs from
  /// what this call asked for.
  struct EnsureAnswer {
    EnsureOutcome outcome = EnsureOutcome::kStarted;
    std::vector<std::string> differs;
  };
  /// Gets the record when ready with how it was answered, or the failure.
  using EnsureDone =
      std::function<void(const SupervisedProcess* ready, const EnsureAnswer& answer, const StartFailure* failure)>;
  using KillDone = std::function<void(const nlohmann::json& result)>;

  /// at most one process.log_dropped event (and one rewrite of
  /// the record) per helper this often, however fast its log is cut.
  static constexpr std::chrono::milliseconds kDropNoteInterval{1000};
  /// how long the log watch lets writes pile up before looking.
  static constexpr std::chrono::milliseconds kLogCapWindow{50};

  /// `log_limits`: how much disk helper logs may take.
  ProcessService(boost::asio::io_context& io, const StateStore& store, EventBus& events,
                 ProcessLauncher& launcher, HelperLogLimits log_limits = {});
  ~ProcessService();
  ProcessService(const ProcessService&) = delete;
  ProcessService& operator=(const ProcessService&) = delete;

  /// Re-adopts what procs/*.json records: same pid and start time -> watched
  /// again; gone -> exited (status unknown); pid reused -> lost, never
  /// signalled. Records named after the old layout (procs/NAME.json, no
  /// scope) are read as the global scope and moved to procs/STEM.json.
  void restore();

  const ProcessRegistry& registry() const { return registry_; }

  /// Throws protocol::Error for what is refused before any waiting (bad
  /// pattern, command or directory not found); otherwise `done` runs once.
  /// With request.lease the caller's connection holds the helper once it
  /// is ready (see Leases).
  /// `check_start` (the as-user check that the command and
  /// directory can be run) is called only when this call may start a
  /// process (no record, or a restart); reusing or joining a helper runs
  /// nothing, so it costs nothing (pytest-xprocess reuses a running one
  /// whatever its starter says). The pattern is compiled only when it is
  /// not the running helper's (that one compiled when it started).
  void ensure(EnsureRequest request, EnsureDone done, const std::function<void(const EnsureRequest&)>& check_start = {});

  /// Signals the process group, SIGKILL after `grace`, `done` once all of it
  /// is gone (at once when it was not running). Throws not_found.
  void kill(const ProcessKey& key, int signo, std::chrono::milliseconds grace, KillDone done);
  /// A kill from connection `session`: when it holds a leased helper that
  /// others hold too (and not `force`), only its hold is dropped and this
  /// returns the reply ({"released": true, "holders": N, ...}); nullopt
  /// means kill as usual (its hold, if any, goes with the helper).
  std::optional<nlohmann::json> release_instead_of_kill(const ProcessKey& key, std::uint64_t session, bool force);
  /// what proc.kill_all does with `key` for connection
  /// `session` (kill_all_verdict): nullopt means kill it (the caller's own
  /// hold, if any, goes with it); otherwise the reply for a helper it only
  /// let go of ({"released": true, "holders": N, ...}) or left running
  /// because other connections hold it ({"kept": true, "holders": N, ...}).
  std::optional<nlohmann::json> spare_from_kill_all(const ProcessKey& key, std::uint64_t session, bool force);
  /// proc.release: `session` lets go of `key`; a leased helper nobody holds
  /// any more is stopped after its linger. Throws not_found.
  nlohmann::json release(const ProcessKey& key, std::uint64_t session);

  /// Starts sending the log to `sink` (see LogStream), paced by the peer's
  /// reading, holding `slot` until the stream ends; returns what the reply
  /// says: the range sent and whether it follows. Throws not_found.
  nlohmann::json stream_logs(const ProcessKey& key, std::optional<std::uint64_t> lines, bool follow,
                             std::uint64_t session, std::weak_ptr<ReplySink> sink, ReplySink::StreamSlot slot);
  /// A peer left: ends its log streams and its leases (a leased helper
  /// nobody holds any more is stopped after its linger).
  void peer_gone(const Peer& peer);

  /// The record as replies carry it, with `holders`: the connections that
  /// hold it now (leases are not stored: they end with lpd).
  /// also `tree_running` (tree_runs).
  nlohmann::json describe(const SupervisedProcess& record) const;
  /// whether anything of the record's tree still runs: its state
  /// says it runs, or its leader exited and what it left running (a
  /// daemonizing server, in its cgroup) is still there. Such a record
  /// counts as running for kill-all, --xshow and the per-user record
  /// limit. One read of the cgroup's member list; a cgroup lpd cannot read
  /// (other than gone) counts as still running.
  bool tree_runs(const SupervisedProcess& record) const;
  /// The ensure reply for a ready record: `outcome` (started, joined,
  /// reused), `reused` (true only for reused, as before `outcome`) and
  /// `differs`.
  nlohmann::json ensure_result(const SupervisedProcess& record, const EnsureAnswer& answer) const;

 private:
  /// The I/O side of one incarnation of a named process.
  struct Supervision {
    std::uint64_t generation = 0;
    std::shared_ptr<ExitWatch> exit_watch;
    std::shared_ptr<PatternWait> pattern_wait;
    std::unique_ptr<boost::asio::steady_timer> timer;
    bool timer_keeps = false;  // the armed timeout leaves the process running
    std::shared_ptr<KillJob> kill_job;
    bool kill_done = false;
    bool kill_forced = false;
    int kill_signal = 0;
    std::vector<KillDone> kill_waiters;
    std::optional<EnsureRequest> pending_start;  // --restart: start once the old one is gone
    /// Re-adopted while lpd could not look at it (EMFILE...): the next try.
    std::unique_ptr<boost::asio::steady_timer> watch_retry;
    unsigned watch_failures = 0;
    /// Armed while a leased helper has no holder: stops it when it fires.
    std::unique_ptr<boost::asio::steady_timer> linger_timer;
    /// the next process.log_dropped note, armed while one is due.
    std::unique_ptr<boost::asio::steady_timer> drop_note_timer;
    std::chrono::steady_clock::time_point last_drop_note{};
  };
  struct Follower {
    std::uint64_t session;
    std::shared_ptr<LogStream> stream;
  };

  /// ensure() once the lease bookkeeping is done: reuse, join, restart or start.
  void plan_and_run(EnsureRequest request, EnsureDone done, const std::function<void(const EnsureRequest&)>& check_start);
  void start(const EnsureRequest& request, const std::optional<Pattern>& pattern, ProcessRegistry::Waiter waiter);
  /// The processes still in a tree's cgroup (at most kMaxLeftRunning), with argv.
  static std::vector<SupervisedProcess::LeftRunning> left_running_in(const std::string& cgroup_dir);
  /// "pid P: ARGV, ..." for messages.
  static std::string describe_left(const std::vector<SupervisedProcess::LeftRunning>& left);
  /// kill() of a helper whose leader exited: stops what its cgroup still
  /// holds (KillJob of the cgroup) and answers `done` with the list, once
  /// all is gone. False (done untouched) when nothing is left to stop.
  bool kill_left_running(const ProcessKey& key, int signo, std::chrono::milliseconds grace, KillDone& done);
  /// Creates this start's log (logs/STEM.N.log, N one past the last start,
  /// skipping names that exist) and drops the logs beyond keep_logs.
  /// Returns the open descriptor; fills the record's log fields.
  UniqueFd open_start_log(const EnsureRequest& request, SupervisedProcess& record);
  void start_pending(const ProcessKey& key);
  /// a start with no pattern, from the loop: ready when it has
  /// not exited yet; otherwise nothing (its exit watch answers).
  void ready_unless_exited(const ProcessKey& key, std::uint64_t generation);
  /// the helper is ready and its exit watch's pidfd says it has
  /// not exited: a reuse, known with one poll(). False: ask plan_ensure.
  bool ready_and_watched(const ProcessKey& key) const;
  void arm_timeout(const ProcessKey& key, std::uint64_t generation, double seconds, bool keeps);
  void watch_exit(const ProcessKey& key, std::uint64_t generation, int pidfd, bool own_child);
  /// Tries again (after watch_retry_delay) to pin and watch a re-adopted
  /// process lpd could not look at; only a confirmed end ends it.
  void watch_exit_later(const ProcessKey& key, std::uint64_t generation);
  void watch_pattern(const ProcessKey& key, std::uint64_t generation, std::uint64_t offset);

  void on_match(const ProcessKey& key, std::uint64_t generation, const std::string& line, std::uint64_t offset);
  void on_line_limit(const ProcessKey& key, std::uint64_t generation);
  void on_pattern_too_complex(const ProcessKey& key, std::uint64_t generation, const std::string& why);
  /// frees what its helper reserved past its log's end (the tree is gone).
  void release_reserved_log_space(const SupervisedProcess& record);
  void on_timeout(const ProcessKey& key, std::uint64_t generation);
  void on_exit(const ProcessKey& key, std::uint64_t generation, const ExitStatus& status);
  void after_exit(const ProcessKey& key, std::uint64_t generation, const ExitStatus& status);

  void begin_kill(const ProcessKey& key, int signo, std::chrono::milliseconds grace);
  void finish_kill_if_done(const ProcessKey& key);
  void mark_lost(const ProcessKey& key);
  /// Stops the pattern wait and the timer of a start that is decided.
  void end_startup(Supervision& supervision);
  void end_followers(const ProcessKey& key);

  /// A leased helper that nobody holds or waits for: stop it after its
  /// linger (at least `at_least` seconds). Anything else: nothing.
  void stop_if_unheld(const ProcessKey& key, double at_least = 0);
  /// Publishes process.holders (the record with its `holders` count) when
  /// a connection took or let go of a running helper.
  void publish_holders(const ProcessKey& key);
  /// The incarnation ended: its holds and its linger timer with it.
  void end_leases(const ProcessKey& key);

  /// the last lines of its current log, read from the file
  /// (at most kFailureLogLines lines, kFailureLogBytes bytes); "" for an
  /// empty log, nullopt when it cannot be read.
  std::optional<std::string> last_lines_of(const ProcessKey& key) const;
  static constexpr std::uint64_t kFailureLogLines = 10;
  static constexpr std::size_t kFailureLogBytes = 4096;
  /// Why a start failed: `what` then `fate` ("it is being killed"). When
  /// the state directory's file system is full the helper's output may be
  /// lost: then the message says that (code `unavailable`) and gives only
  /// the fate, never blaming the helper for a line lpd could not see.
  StartFailure failure(protocol::ErrorCode code, const ProcessKey& key, std::string what,
                       const std::string& fate = {}) const;
  void persist(const SupervisedProcess& record) const;
  /// Records a just-started helper; when the state directory refuses
  /// (ENOSPC, EIO) the helper is killed and its waiters get the failure.
  void persist_start(const ProcessKey& key, std::uint64_t generation);
  void publish(const std::string& type, const SupervisedProcess& record);

  // the helper log cap (log_cap_rules.h).
  /// Measures `owner`'s helper logs (running helpers' and kept ones, only
  /// lpd's own logs/STEM.N.log) and frees what plan_log_freeing says;
  /// records the dropped bytes and forgets removed logs.
  void enforce_log_caps(uid_t owner);
  /// enforce_log_caps(owner) soon, once for however many starts, exits and
  /// kills asked meanwhile: each check measures every log of the owner, and
  /// a kill-all of 300 helpers ran 300 of them back to back (the loop was
  /// held for 27 s; attacker N3).
  void request_log_caps(uid_t owner);
  /// Persists the record and publishes process.log_dropped, at most once
  /// per kDropNoteInterval (the last change is always published).
  void note_dropped(const ProcessKey& key);
  /// Before a new helper record of a non-root owner: forgets that owner's
  /// oldest ended helpers (records and logs) to stay within
  /// helpers_per_owner. Throws protocol::Error limit_exceeded when its
  /// running helpers alone fill it.
  void make_room_for(const ProcessKey& key);
  /// Watches a running helper's log for the cap.
  void watch_log(const SupervisedProcess& record);
  Supervision& supervision(const ProcessKey& key) { return supervision_[key]; }

  boost::asio::io_context& io_;
  const StateStore& store_;
  EventBus& events_;
  ProcessLauncher& launcher_;
  ProcessRegistry registry_;
  Leases leases_;
  std::map<ProcessKey, Supervision> supervision_;
  std::multimap<ProcessKey, Follower> followers_;
  HelperLogLimits log_limits_;
  std::set<uid_t> log_caps_pending_;  // owners request_log_caps() will check
  std::unique_ptr<boost::asio::steady_timer> log_caps_timer_;
  std::uint64_t log_block_ = 0;  // measured once logs/ exists
  std::unique_ptr<HelperLogWatch> log_watch_;
};

/// what proc.kill_all (lpctl kill-all, a bulk clean-up) does
/// with one running helper. Unlike a kill by name, it leaves alone a
/// helper other connections hold (a live session's shared server):
/// kKeep, unless `force`. One the caller holds with others: kReleaseOnly
/// (as proc.kill). Otherwise, or with `force`: kKill.
enum class BulkKillVerdict { kKill, kReleaseOnly, kKeep };
BulkKillVerdict kill_all_verdict(bool force, bool caller_holds, std::size_t holders_including_caller);

}  // namespace lpd::daemon
