#pragma once

#include <list>
#include <map>
#include <memory>
#include <random>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/core/access.h"
#include "daemon/core/operation.h"
#include "daemon/core/event_bus.h"
#include "daemon/os/exit_watch.h"
#include "daemon/pauses/pause_dirs.h"
#include "daemon/pauses/pause_registry.h"
#include "daemon/runs/run_registry.h"
#include "daemon/core/state_store.h"

namespace lpd::daemon {

/// PauseService is the I/O edge of live pauses. A shim's pause.request is
/// answered only when the pause ends: resumed (pause.resume), timed out
/// (a daemon timer, besides the shim's own), or stale (the test process's
/// pidfd says it died). Each change is mirrored to
/// runs/<run_id>/pauses/<pause_id>.json and published on the event bus.
class PauseService {
 public:
  /// `socket_path`: where lpd listens, read when a pause event is
  /// published (the caller keeps it; systemd may set it after construction),
  /// for the resume command the events' `announcement` shows.
  PauseService(boost::asio::io_context& io, EventBus& events, const StateStore& store, RunRegistry& runs,
               const AccessPolicy& access, const std::string& socket_path);

  json handle_request(Call& call);  // deferred until the pause ends
  json handle_resume(Call& call);
  json handle_list(Call& call);
  json handle_watch(Call& call);  // deferred until a pause of the run is pending
  /// pause.mirror, pytest-live-pause's pause directory (PauseDirs).
  json handle_mirror(Call& call) { return dirs_->handle_mirror(call); }
  /// The pause `id_or_prefix` names and its owner, for the dispatcher's
  /// gate of pause.resume. Throws not_found, or bad_request (ambiguous prefix).
  Owned owner_of(std::string_view id_or_prefix);
  void peer_gone(const Peer& peer);
  /// Loads pauses; pending ones whose test process is gone become stale.
  void restore();

  const PauseRegistry& registry() const { return registry_; }

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
