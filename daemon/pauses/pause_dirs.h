#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "daemon/core/defer_reply.h"
#include "daemon/core/operation.h"
#include "daemon/core/event_bus.h"
#include "daemon/os/exit_watch.h"
#include "daemon/os/launcher.h"
#include "daemon/pauses/pause_registry.h"
#include "daemon/runs/run_registry.h"

namespace lpd::daemon {

/// PauseDirs keeps pytest-live-pause's pause directory for the runs that
/// asked for one (`--pause-dir DIR`, op pause.mirror): DIR/runs/<run_id>/
/// with run.json, events.jsonl (the run's run.* and pause.* events, one
/// JSON object a line), pauses/<pause_id>.json (the pause record, the
/// fields pytest-live-pause writes) and commands/, where a
/// `<pause_id>.resume.json` written by a script resumes that pause within
/// milliseconds (inotify), validated as `lpctl resume` is. A command lpd
/// refuses leaves the pause pending and publishes pause.command_rejected
/// (so events.jsonl gets its line); an applied one is removed.
///
/// Every file operation happens in a pause directory agent
/// (pause_dir_agent.h) with the asking user's identity; lpd only exchanges
/// lines with it, without ever blocking.
class PauseDirs {
 public:
  /// Resumes pause_id of run_id as a command file asks; throws
  /// protocol::Error exactly as pause.resume would (and not_found when the
  /// pause is not that run's).
  using ApplyCommand = std::function<void(const std::string& run_id, const std::string& pause_id,
                                          const ResumeRequest& request)>;

  PauseDirs(boost::asio::io_context& io, EventBus& events, RunRegistry& runs, const PauseRegistry& pauses,
            ApplyCommand apply);
  ~PauseDirs();
  PauseDirs(const PauseDirs&) = delete;
  PauseDirs& operator=(const PauseDirs&) = delete;

  /// pause.mirror: mirrors run `run_id` into `pause_dir`, made as user
  /// `who`. The reply is deferred (`defer`; then null is returned) until the
  /// agent made the directories ({"pause_dir","run_dir"}), or refused
  /// (permission_denied: a link, another user's directory; bad_request).
  /// The same directory again (a shim that reconnected) is answered at
  /// once; another one for the same run is `conflict`. Throws not_found (no
  /// such run), conflict (the run ended), bad_request (not an absolute path),
  /// unavailable (no agent could be started).
  json mirror(const std::string& run_id, const std::string& pause_dir, const Credentials& who,
              const DeferReply& defer);

 private:
  struct Mirror;

  void on_event(const Event& event);
  void read_from(const std::shared_ptr<Mirror>& mirror);
  void on_message(Mirror& mirror, const json& message);
  void on_command(Mirror& mirror, const json& message);
  void send(Mirror& mirror, const json& request);
  void flush(const std::shared_ptr<Mirror>& mirror);
  void write_run(Mirror& mirror);
  /// The agent is gone or must go: forget the mirror (the agent's own
  /// exit is reaped by its exit watch).
  void drop(const std::string& run_id, const std::string& why);

  boost::asio::io_context& io_;
  EventBus& events_;
  RunRegistry& runs_;
  const PauseRegistry& pauses_;
  ApplyCommand apply_;
  std::uint64_t subscription_ = 0;
  std::map<std::string, std::shared_ptr<Mirror>> mirrors_;  // by run_id
  /// Each agent's exit watch, until it was reaped (waitpid of that pid only).
  std::map<pid_t, std::shared_ptr<ExitWatch>> agents_;
};

}  // namespace lpd::daemon
