#pragma once

#include <list>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/core/access.h"
#include "daemon/core/defer_reply.h"
#include "daemon/core/operation.h"
#include "daemon/core/event_bus.h"
#include "daemon/os/exit_watch.h"
#include "daemon/pauses/pause_dirs.h"
#include "daemon/pauses/pause_registry.h"
#include "daemon/runs/run_registry.h"
#include "daemon/core/state_store.h"

namespace lpd::daemon {

/// pause.request's fields, as a shim sent them (checked by PauseService::request).
struct PauseRequest {
  std::string run_id;
  std::string pause_id;          // "": lpd makes one up
  std::string kind = "failure";  // "failure" or "checkpoint"
  double timeout = 300;          // seconds until the pause times out
  std::string nodeid;
  std::string task;
  std::string original_failure;
  std::string worker_id;
  std::string hostname;
  std::string cwd;
};

/// Where a pause list goes on from: the last listed pause's place in the
/// list's order (created_at, then pause_id).
struct PauseCursor {
  double created_at = 0;
  std::string pause_id;
};

/// One page of pause.list: the pauses as the caller may see them, and
/// where the next page starts (nullopt: this was the last).
struct PausePage {
  std::vector<json> pauses;
  std::optional<PauseCursor> next;
};

/// What the caller may see of a pause (Call::view of its record).
using PauseView = std::function<json(const Pause&)>;

/// PauseService is the I/O edge of live pauses. A shim's pause.request is
/// answered only when the pause ends: resumed (pause.resume), timed out
/// (a daemon timer, besides the shim's own), or stale (the test process's
/// pidfd says it died). Each change is mirrored to
/// runs/<run_id>/pauses/<pause_id>.json and published on the event bus.
/// Its API is typed; pause_ops.h decodes the operations into it.
class PauseService {
 public:
  /// `socket_path`: where lpd listens, read when a pause event is
  /// published (the caller keeps it; systemd may set it after construction),
  /// for the resume command the events' `announcement` shows.
  PauseService(boost::asio::io_context& io, EventBus& events, const StateStore& store, RunRegistry& runs,
               const AccessPolicy& access, const std::string& socket_path);

  /// Pauses `requester`'s test process in `request.run_id`: the reply is
  /// deferred (`defer`; then null is returned) until the pause ends, and is
  /// then its outcome (Pause::outcome_json). A pause_id already known (a
  /// shim re-sending it after a reconnect) attaches to it, or returns its
  /// outcome at once when it already ended. Throws not_found (no such run), bad_request (pause_id,
  /// kind), conflict (the run ended, the pause is another run's),
  /// permission_denied (a re-sent pause that is not the requester's),
  /// unavailable (lpd cannot watch the requester or record the pause).
  json request(const PauseRequest& request, const Peer& requester, const DeferReply& defer);
  /// Resumes the pause `id_or_prefix` names as `request` says; returns its
  /// record. Throws as PauseRegistry::lookup and PauseRegistry::resume.
  json resume(std::string_view id_or_prefix, const ResumeRequest& request);
  /// Pending pauses (every pause with `all`), optionally of one run, oldest
  /// first, after `after`: at most `limit` of them and PageLimits::kMaxReplyBytes.
  PausePage list(bool all, const std::string& run_id, std::size_t limit, const std::optional<PauseCursor>& after,
                 const PauseView& view) const;
  /// The oldest pending pause of `run_id` as `view` shows it; nullopt when
  /// none is pending. Throws not_found (no such run), conflict (none is
  /// pending and the run ended: none will come).
  std::optional<json> pending_pause_of(const std::string& run_id, const PauseView& view) const;
  /// Answers `responder` with the next pause of `run_id` ({"pause": ...}),
  /// or fails it: timeout after `timeout` seconds, conflict when the run
  /// ends first. `slot` is held until then; `session_id`'s end drops it.
  void wait_for_pause(const std::string& run_id, std::optional<double> timeout, std::uint64_t session_id,
                      PauseView view, ReplySink::StreamSlot slot, Responder responder);
  /// pause.mirror, pytest-live-pause's pause directory (PauseDirs::mirror).
  json mirror(const std::string& run_id, const std::string& pause_dir, const Credentials& who,
                             const DeferReply& defer) {
    return dirs_->mirror(run_id, pause_dir, who, defer);
  }
  /// The pause `id_or_prefix` names and its owner, for the dispatcher's
  /// gate of pause.resume. Throws not_found, or bad_request (ambiguous prefix).
  Owned owner_of(std::string_view id_or_prefix);
  void peer_gone(const Peer& peer);
  /// Loads pauses; pending ones whose test process is gone become stale.
  void restore();

  const PauseRegistry& registry() const { return registry_; }
  /// Retention removed these runs: their resolved pauses leave memory
  /// (`lpctl ls -a` listed them, and they were kept until lpd stopped).
  void forget_runs(const std::set<std::string>& run_ids) { registry_.forget_runs(run_ids); }

 private:
  /// A `lpctl watch` waiting for the next pause of a run.
  struct Watcher {
    std::string run_id;
    Responder responder;
    std::uint64_t session_id;
    /// What the watcher may see of the pause it gets (Call::view at watch time).
    std::function<json(const Pause&)> view;
    ReplySink::StreamSlot slot;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  /// Starts the pause's deadline and the watch of its test process,
  /// through `pidfd` when the caller already pinned it (-1: open one).
  void arm(const Pause& pause, int pidfd);
  void watch_test_process(const Pause& pause, int pidfd);
  void settle(Pause& pause, std::string_view event);
  void persist(const Pause& pause);
  void on_event(const Event& event);
  /// publishes pause event `event` with the lines a terminal shows
  /// for it (`announcement`, see pause_announcement.h).
  void publish(std::string_view event, const Pause& pause);
  void answer_watchers(std::string_view run_id, const Pause* pause, std::string_view run_ended_message);

  boost::asio::io_context& io_;
  EventBus& events_;
  const StateStore& store_;
  RunRegistry& runs_;
  const AccessPolicy& access_;
  const std::string& socket_path_;
  PauseRegistry registry_;
  std::mt19937_64 random_{std::random_device{}()};

  std::map<std::string, Responder> waiting_;  // pause_id -> the shim blocked on it
  std::map<std::string, std::unique_ptr<boost::asio::steady_timer>> timers_;
  std::map<std::string, std::shared_ptr<ExitWatch>> exit_watches_;
  std::list<Watcher> watchers_;
  std::unique_ptr<PauseDirs> dirs_;  // after the registry it reads
};

}  // namespace lpd::daemon
