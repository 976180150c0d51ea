// pytest-relay-run's jobs, as plain rules (no I/O).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace lpd::daemon::http {

/// A job's state, with pytest-relay-run's names (JobState in its model.py).
enum class RelayState { kCreated, kCollected, kInProgress, kTerminating, kDone };
std::string_view to_string(RelayState state);

/// A refusal of the job API, with the HTTP status pytest-relay-run answers it
/// with (400 a bad request, 404 an unknown id, 409 a conflict).
class RelayError : public std::runtime_error {
 public:
  RelayError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

/// pytest-relay-run's argument rules (`_parse_args` in its api/app.py):
/// each element of `args` is split as a POSIX shell would (Python's
/// shlex.split: quotes, backslashes; no expansion), `--collect-only` is
/// taken out (a collect-only job gets it from lpd), and `--session-id X`
/// (or `--session-id=X`) names the job when no id is given and is taken
/// out too (pytest-relay's plugin option; lpd's pytest has no such
/// plugin); an id that differs from it is 400. Throws RelayError 400 for an unclosed quote.
struct RelayArgs {
  std::vector<std::string> args;
  std::string id;  // the id given, else the session id in args, else ""
};
RelayArgs parse_relay_args(const std::vector<std::string>& given, const std::string& id);

/// One element split as shlex.split (POSIX mode) does; throws RelayError
/// 400 ("No closing quotation", "No escaped character").
std::vector<std::string> shell_split(std::string_view text);

/// a job's returncode as pytest-relay-run gives it: Python's
/// subprocess convention, -N for a pytest killed by signal N (lpd's own
/// returncode says 128+N, as a shell does; `signal` is the signal lpd's
/// job event names for such an end), else lpd's returncode.
std::optional<int> relay_returncode(std::optional<int> returncode, std::optional<int> signal);

/// One job of the HTTP job API: a pytest invocation lpd runs as a
/// supervised run (run.start). A job may run twice: a collect-only job
/// (`--collect-only`) can be started afterwards for real.
struct RelayJob {
  std::string id;
  uid_t owner = static_cast<uid_t>(-1);
  std::vector<std::string> args;  // pytest's arguments, `--collect-only` taken out
  std::string cwd;
  bool collect_only = false;
  RelayState state = RelayState::kCreated;
  std::optional<int> returncode;
  std::string run_id;       // lpd's run of the latest start ("" before it)
  std::string log;          // that run's output log
  bool running = false;     // that run has not ended
  bool collecting = false;  // that run is a --collect-only one
  std::string failure;      // why its start failed (its text while it has no output)
  std::uint64_t order = 0;  // creation order: eviction takes the oldest
};

/// RelayJobs is the job table and its state rules, as pytest-relay-run's
/// JobManager/Job keep them, decided here (docs: README "HTTP and WebSocket
/// API"):
///   created ──launch──▶ in-progress ──stop──▶ terminating ──end──▶ done
///   created ──launch (collect-only)──▶ (still created) ──end──▶ collected
///   collected ──start──▶ in-progress ...
/// `created` is announced (on_change) when a job is made, except for a
/// collect-only job, whose first announcement is `collected`, as in relay-run.
/// "start" runs a job that is not running and is created or collected
/// (the full suite, never --collect-only again); any other start is 409.
/// "stop" of a job that is not running changes nothing (relay-run's no-op).
/// Deleting a running job is 409 (lpd does not leave a run nobody can
/// see or stop any more): stop it first.
class RelayJobs {
 public:
  /// Told each time a job's state is to be announced (RelayJobService
  /// sends it to the owner's WebSockets).
  class Watcher {
   public:
    virtual ~Watcher() = default;
    virtual void changed(const RelayJob& job) = 0;
  };
  /// `watcher`: told of every announced change (null: nobody).
  explicit RelayJobs(Watcher* watcher = nullptr) : watcher_(watcher) {}

  /// pytest-relay-run keeps 100 jobs and evicts the oldest; lpd evicts the
  /// oldest job that is not running, and refuses a new one (409) when all run.
  /// (A table is one user's: RelayJobService keeps one per user.)
  static constexpr std::size_t kMaxJobs = 100;
  /// Job ids are path segments of /jobs/{id}: lpd's run id characters.
  static constexpr std::size_t kMaxIdBytes = 64;
  /// Arguments of one job, and bytes of one argument.
  static constexpr std::size_t kMaxArgs = 1000;

  /// Makes a job (not running yet) and announces `created` unless it is
  /// collect-only. `id` empty: `fresh_id` is used. Throws RelayError 400
  /// (bad id), 409 (the id exists, or kMaxJobs jobs are all running).
  RelayJob& create(std::string id, const std::string& fresh_id, uid_t owner, std::vector<std::string> args,
                   std::string cwd, bool collect_only);
  /// Whether `start` may run the job; throws RelayError 409 when not.
  void check_start(const RelayJob& job) const;
  /// A run of the job was launched: `collecting` for its first run of a
  /// collect-only job. Announces in-progress unless collecting.
  void launched(RelayJob& job, std::string run_id, std::string log, bool collecting);
  /// The job's launch failed (`why`): a job that never ran is announced
  /// done (returncode null, text `why`), so a watcher of its `created`
  /// sees an end, and forgotten; one that ran before keeps its state.
  void launch_failed(const std::string& id, const std::string& why);
  /// lpd's job for run `run_id` changed state (its `job` event):
  /// "terminating" and "done" (with `returncode`) move the relay job.
  /// False when no job has that run.
  bool run_changed(const std::string& run_id, std::string_view lpd_state, std::optional<int> returncode);

  /// lpd no longer knows run `run_id` (lpd was restarted and the run is
  /// gone, pruned or never written): its job, if running, is done with no
  /// returncode and `why` as its failure (its text when the log is gone
  /// too). Announced. False when no job has that run.
  bool run_lost(const std::string& run_id, const std::string& why);
  /// Replaces the table with `jobs` (read back at lpd's start, oldest
  /// first, each id once, at most kMaxJobs): nothing is announced.
  void restore(std::vector<RelayJob> jobs);

  RelayJob* find(const std::string& id);
  /// Throws RelayError 404 when there is no such job.
  RelayJob& get(const std::string& id);
  RelayJob* find_by_run(const std::string& run_id);
  const RelayJob* find_by_run(const std::string& run_id) const;
  /// Every job, oldest first.
  std::vector<const RelayJob*> all() const;
  /// Throws RelayError 404 (unknown) or 409 (running).
  void remove(const std::string& id);
  /// Removes every job, or (409, naming them) none while one runs.
  void remove_all();
  std::size_t size() const { return jobs_.size(); }

  /// Whether `id` may name a job ([A-Za-z0-9][A-Za-z0-9._-]*, at most kMaxIdBytes).
  static bool valid_id(std::string_view id);

 private:
  void announce(const RelayJob& job) {
    if (watcher_) watcher_->changed(job);
  }
  Watcher* watcher_;
  std::map<std::string, RelayJob> jobs_;
  std::map<std::string, std::string> by_run_;  // run_id -> job id
  std::uint64_t next_order_ = 1;
};

}  // namespace lpd::daemon::http
