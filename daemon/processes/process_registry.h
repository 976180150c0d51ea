#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "daemon/os/exit_status.h"
#include "daemon/os/proc_stat.h"
#include "daemon/processes/process_name.h"
#include "protocol/error.h"

namespace lpd::daemon {

/// Where a supervised process is in its life. stopping is the short time
/// between a kill being sent and the process being gone.
enum class ProcessState { kStarting, kReady, kStopping, kExited, kKilled, kLost };

std::string_view to_string(ProcessState state);
std::optional<ProcessState> proc_state_from_string(std::string_view name);
/// starting, ready and stopping: a process lpd believes runs.
bool is_running(ProcessState state);

/// What can happen to a supervised process.
enum class ProcessEvent {
  kMatched,        // a log line matched its pattern
  kExited,         // its pidfd said it is gone
  kTimedOut,       // no match within the timeout
  kTimedOutKept,   // same, with --keep-on-timeout
  kLineLimit,      // max_read_lines lines read without a match
  kKillRequested,  // lpctl kill / kill-all / ensure --restart
};
std::string_view to_string(ProcessEvent event);

/// What the service must do after a transition. The registry itself
/// answers the waiting ensure callers; the service does the I/O part.
enum class ProcessAction {
  kNone,
  kAnswerReady,       // ensure waiters succeed; stop reading the log
  kFailStart,         // ensure waiters fail; stop the pattern wait
  kFailStartAndKill,  // ensure waiters fail, then kill the process group
  kKill,              // signal the process group
  kRecordEnd,         // note the end (status, time)
};

/// One row of the lifecycle: in `from`, `event` leads to `to` and `action`.
struct Transition {
  ProcessState from;
  ProcessEvent event;
  ProcessState to;
  ProcessAction action;
};

/// The whole lifecycle in one table, in the spirit of s6: an event missing
/// from it is ignored in that state (a timer that fires after the pattern
/// matched, a second match, an exit already recorded).
std::span<const Transition> lifecycle();
std::optional<Transition> lifecycle_step(ProcessState from, ProcessEvent event);

/// SupervisedProcess is the record of one named helper: what was started,
/// as whom, and what became of it. It is what procs/STEM.json holds
/// (process_file_stem).
struct SupervisedProcess {
  std::string name;
  uid_t owner = 0;
  std::string scope;             // the project (rootdir); "" is the global scope
  std::uint64_t generation = 0;  // one per start; stale timers and watches compare it
  ProcessState state = ProcessState::kStarting;
  pid_t pid = 0;
  std::uint64_t start_time = 0;  // /proc start time: a pid is trusted only with it
  double started_at = 0;         // wall-clock seconds
  double ready_at = 0;
  double ended_at = 0;
  std::vector<std::string> argv;
  std::string cwd;
  std::string pattern;            // "": none, ready as soon as it is spawned
  std::string log_path;           // this start's log (logs/STEM.START.log)
  std::vector<std::string> logs;  // the kept starts' logs, newest first (log_path first)
  std::uint64_t start_number = 0; // how many times this key was started; names the log
  std::uint64_t keep_logs = 5;    // how many starts' logs are kept
  /// bytes of log_path's oldest output freed by the size cap
  /// (HelperLogLimits); its offsets still count them.
  std::uint64_t log_dropped_bytes = 0;
  bool leased = false;            // started by a lease: stopped once its last holder is gone
  double linger = 0;              // seconds it outlives its last holder
  double timeout = 0;
  std::int64_t max_read_lines = 0;  // 0: no limit
  bool keep_on_timeout = false;
  std::uint64_t ready_offset = 0;   // log offset just after the matching line
  std::string ready_line;
  ExitStatus exit;
  bool adopted = false;             // re-adopted after an lpd restart: not our child
  std::string failure;              // why startup failed, for ps/info
  /// Its tree's cgroup (launcher), "" without one: after the leader exits,
  /// what it left running (a daemonizing server) is still found there.
  std::string cgroup_dir;
  /// What its tree still ran when the leader exited (pid, argv): left
  /// running, as a daemonizing server must be, until `lpctl kill` stops it.
  struct LeftRunning {
    pid_t pid = 0;
    std::string argv;
  };
  std::vector<LeftRunning> left_running;

  ProcessKey key() const { return {owner, scope, name}; }
};

/// How a call names a helper: a NAME, maybe a scope (absent: the caller
/// gave none, as old clients do), maybe an owner (root or an admin choosing
/// among users who each have one of that scope and name).
struct ProcessAddress {
  std::string name;
  std::optional<std::string> scope;
  std::optional<uid_t> owner;
  // which of other users' records count when several owners
  // have a helper of this name. Acting on one (kill, release) means a
  // running one: ended records are ignored while any of them runs.
  // Reading (info, logs) means any record, ended ones too (a crashed
  // helper's log is what one reads): none is picked over another.
  bool running_first = false;
};

/// how a uid is named in messages ("alice (uid 1000)"); the
/// registry does no lookups of its own.
using OwnerNamer = std::function<std::string(uid_t)>;
/// "uid N": the namer when the caller has none.
std::string uid_text(uid_t uid);

/// Why a start failed, as the waiting callers will be told.
struct StartFailure {
  protocol::ErrorCode code;
  std::string message;
};

/// What to do with an ensure call, from the record and its liveness.
enum class EnsurePlan {
  kReuse,            // alive and ready: answer at once
  kJoin,             // a start is in progress: wait for the same readiness
  kStart,            // nothing runs under this name: start it
  kStopThenStart,    // --restart of a live one, or a kill in progress: start once it is gone
};

/// ProcessRegistry holds every supervised process by key (owner, scope,
/// name) and applies the
/// lifecycle table. It touches no socket, file or process: liveness comes
/// from a function it is given, so tests hand it a fake.
class ProcessRegistry {
 public:
  using LivenessCheck = std::function<Liveness(pid_t, std::uint64_t)>;
  /// An ensure caller waiting for readiness: gets the record, or the failure.
  using Waiter = std::function<void(const SupervisedProcess&, const StartFailure*)>;

  explicit ProcessRegistry(LivenessCheck liveness) : liveness_(std::move(liveness)) {}

  const SupervisedProcess* find(const ProcessKey& key) const;
  std::vector<const SupervisedProcess*> all() const;
  /// the records started (or restored) after `after_generation`,
  /// in that order (by generation): proc.list's pages, whose cursor is the
  /// last generation listed. A helper started again moves to the end.
  std::vector<const SupervisedProcess*> after_generation(std::uint64_t after_generation) const;

  /// Which helper `address` names for `caller`. With a scope: that scope's
  /// helper of that name, the caller's own first, else the only owner's
  /// (the dispatcher's gate then decides whether the caller may touch it).
  /// Without one: the global scope's, else the only helper of that name in
  /// any scope, the caller's own first. Throws protocol::Error not_found
  /// (naming the caller's own helpers of that name elsewhere), or conflict
  /// when several match and the caller owns none or several of them.
  /// among other users' helpers, several owners is a conflict
  /// naming the owners (`owner_name`) and asking for one, whoever asks:
  /// root and the admin group are never handed one user's helper over
  /// another's. With `running_first`, ended records of other users in the
  /// one scope named do not count while one of them runs.
  ProcessKey resolve(const ProcessAddress& address, uid_t caller, const OwnerNamer& owner_name = uid_text) const;

  /// Decides an ensure for `key`. A ready record whose pid is gone or
  /// reused is not reused: its end simply has not been reported yet.
  EnsurePlan plan_ensure(const ProcessKey& key, bool restart) const;

  /// Records a new incarnation in state starting, replacing an ended one.
  /// Waiters queued for it (kStopThenStart) stay. Returns its generation.
  std::uint64_t begin(SupervisedProcess record);
  /// Puts back a record read from disk, as it is.
  void restore(SupervisedProcess record);
  /// Changes a record without an event (restore's verdict, a failed spawn).
  SupervisedProcess* mutable_record(const ProcessKey& key);
  void erase(const ProcessKey& key);

  void add_waiter(const ProcessKey& key, Waiter waiter);
  std::size_t waiters(const ProcessKey& key) const;
  /// Fails every waiter of `key` (a start that could not even spawn).
  void fail_waiters(const ProcessKey& key, const StartFailure& failure);

  /// Applies `event` to the incarnation `generation` of `key`. Returns the
  /// transition taken, or nullopt when the table ignores it (or the
  /// generation is stale). Answers ensure waiters as the action says;
  /// `failure` is what failing waiters are told.
  std::optional<Transition> fire(const ProcessKey& key, std::uint64_t generation, ProcessEvent event,
                                 const StartFailure* failure = nullptr);

 private:
  struct Entry {
    SupervisedProcess record;
    std::vector<Waiter> waiters;
  };
  Entry* entry(const ProcessKey& key);
  const Entry* entry(const ProcessKey& key) const;

  LivenessCheck liveness_;
  std::map<ProcessKey, Entry> entries_;
  std::uint64_t next_generation_ = 1;
};

}  // namespace lpd::daemon
