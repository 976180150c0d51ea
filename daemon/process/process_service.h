#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "daemon/dispatcher.h"
#include "daemon/event_bus.h"
#include "daemon/process/kill_job.h"
#include "daemon/process/launcher.h"
#include "daemon/process/log_stream.h"
#include "daemon/process/pattern.h"
#include "daemon/process/pattern_wait.h"
#include "daemon/process/pidfd_watch.h"
#include "daemon/process/process_registry.h"
#include "daemon/state_store.h"

namespace lpd::daemon {

/// One `ensure` as the service needs it, after the handler checked fields.
struct EnsureRequest {
  std::string name;
  std::string pattern;
  std::vector<std::string> argv;
  std::string cwd;
  std::vector<std::string> env;  // the whole environment, "K=V"
  double timeout = 120;
  std::int64_t max_read_lines = 0;
  bool restart = false;
  bool keep_on_timeout = false;
  std::optional<Credentials> credentials;
  uid_t owner = 0;
};

/// ProcessService is the I/O edge of supervised helpers: it glues the
/// registry's rules to the launcher, the pidfd watches, the log tail and
/// pattern wait, the timers, the state files (procs/NAME.json) and the
/// event bus (process.starting|ready|exited|killed|lost). Stopping lpd
/// leaves every helper running; restore() re-adopts them on the next start.
class ProcessService {
 public:
  static constexpr double kDefaultGraceSeconds = 5;
  /// `proc.logs` without -n sends at most this much (the newest part).
  static constexpr std::uint64_t kMaxLogReplyBytes = 32ull * 1024 * 1024;

  /// Gets the record when ready (`reused` says it was already running), or the failure.
  using EnsureDone = std::function<void(const SupervisedProcess* ready, bool reused, const StartFailure* failure)>;
  using KillDone = std::function<void(const nlohmann::json& result)>;

  ProcessService(boost::asio::io_context& io, const StateStore& store, EventBus& events,
                 ProcessLauncher& launcher);
  ~ProcessService();
  ProcessService(const ProcessService&) = delete;
  ProcessService& operator=(const ProcessService&) = delete;

  /// Re-adopts what procs/*.json records: same pid and start time -> watched
  /// again; gone -> exited (status unknown); pid reused -> lost, never signalled.
  void restore();

  const ProcessRegistry& registry() const { return registry_; }

  /// Throws protocol::Error for what is refused before any waiting (bad
  /// pattern, command or directory not found); otherwise `done` runs once.
  void ensure(EnsureRequest request, EnsureDone done);

  /// Signals the process group, SIGKILL after `grace`, `done` once all of it
  /// is gone (at once when it was not running). Throws not_found.
  void kill(const std::string& name, int signo, std::chrono::milliseconds grace, KillDone done);

  /// Starts sending the log to `sink` (see LogStream), paced by the peer's
  /// reading, holding `slot` until the stream ends; returns what the reply
  /// says: the range sent and whether it follows. Throws not_found.
  nlohmann::json stream_logs(const std::string& name, std::optional<std::uint64_t> lines, bool follow,
                             std::uint64_t session, std::weak_ptr<ReplySink> sink, ReplySink::StreamSlot slot);
  /// Ends the log streams of a peer that left.
  void drop_session(std::uint64_t session);

  nlohmann::json describe(const SupervisedProcess& record) const;
  /// The ensure reply for a ready record.
  nlohmann::json ensure_result(const SupervisedProcess& record, bool reused) const;

 private:
  /// The I/O side of one incarnation of a named process.
  struct Supervision {
    std::uint64_t generation = 0;
    std::shared_ptr<PidfdWatch> exit_watch;
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
  };
  struct Follower {
    std::uint64_t session;
    std::shared_ptr<LogStream> stream;
  };

  void start(const EnsureRequest& request, const Pattern& pattern, ProcessRegistry::Waiter waiter);
  void start_pending(const std::string& name);
  void arm_timeout(const std::string& name, std::uint64_t generation, double seconds, bool keeps);
  void watch_exit(const std::string& name, std::uint64_t generation, int pidfd, bool own_child);
  /// Tries again (after watch_retry_delay) to pin and watch a re-adopted
  /// process lpd could not look at; only a confirmed end ends it.
  void watch_exit_later(const std::string& name, std::uint64_t generation);
  void watch_pattern(const std::string& name, std::uint64_t generation, std::uint64_t offset);

  void on_match(const std::string& name, std::uint64_t generation, const std::string& line, std::uint64_t offset);
  void on_line_limit(const std::string& name, std::uint64_t generation);
  void on_timeout(const std::string& name, std::uint64_t generation);
  void on_exit(const std::string& name, std::uint64_t generation, const ExitStatus& status);
  void after_exit(const std::string& name, std::uint64_t generation, const ExitStatus& status);

  void begin_kill(const std::string& name, int signo, std::chrono::milliseconds grace);
  void finish_kill_if_done(const std::string& name);
  void mark_lost(const std::string& name);
  /// Stops the pattern wait and the timer of a start that is decided.
  void end_startup(Supervision& supervision);
  void end_followers(const std::string& name);

  std::string last_lines_of(const std::string& name) const;
  StartFailure failure(protocol::ErrorCode code, const std::string& name, std::string what) const;
  void persist(const SupervisedProcess& record) const;
  void publish(const std::string& type, const SupervisedProcess& record);
  Supervision& supervision(const std::string& name) { return supervision_[name]; }

  boost::asio::io_context& io_;
  const StateStore& store_;
  EventBus& events_;
  ProcessLauncher& launcher_;
  ProcessRegistry registry_;
  std::map<std::string, Supervision> supervision_;
  std::multimap<std::string, Follower> followers_;
};

/// Parses "TERM", "SIGTERM", "15" (and the other common names); nullopt if unknown.
std::optional<int> parse_signal(const std::string& text);

}  // namespace lpd::daemon
