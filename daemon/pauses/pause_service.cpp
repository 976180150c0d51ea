#include "daemon/pauses/pause_service.h"

#include <unistd.h>

#include <cstdio>
#include <optional>
#include <utility>

#include <spdlog/spdlog.h>

#include "daemon/core/clock.h"
#include "daemon/core/paging.h"
#include "daemon/pauses/pause_announcement.h"
#include "protocol/paths.h"
#include "daemon/os/process_identity.h"
#include "daemon/core/resource_shortage.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

namespace {

std::string random_pause_id(std::mt19937_64& random) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(random()));
  return buf;
}

std::string pause_path(const Pause& pause) {
  return "runs/" + pause.run_id + "/pauses/" + pause.pause_id + ".json";
}

}  // namespace

PauseService::PauseService(boost::asio::io_context& io, EventBus& events, const StateStore& store,
                           RunRegistry& runs, const AccessPolicy& access, const std::string& socket_path)
    : io_(io), events_(events), store_(store), runs_(runs), access_(access), socket_path_(socket_path) {
  events_.subscribe([this](const Event& e) { on_event(e); });
  // a command file in a run's --pause-dir resumes a pause of that
  // run only, by the same rules as pause.resume.
  dirs_ = std::make_unique<PauseDirs>(
      io_, events_, runs_, registry_,
      [this](const std::string& run_id, const std::string& pause_id, const ResumeRequest& request) {
        Pause* pause = registry_.find(pause_id);
        if (!pause || pause->run_id != run_id)
          throw Error(ErrorCode::kNotFound, "no pause \"" + pause_id + "\" in run " + run_id);
        settle(registry_.resume(pause_id, request, wall_now()), "pause.resumed");
      });
}

void PauseService::publish(std::string_view event, const Pause& pause) {
  // the terminal lines travel with the event (content: only the
  // pause's owner sees them, as its failure text). The resume command names
  // the socket unless lpctl of that user finds it by itself; lpd's own
  // $LPD_SOCKET does not count, the terminal pasting may not have it.
  const auto env = protocol::process_env();
  const protocol::EnvLookup env_without_socket = [&env](const std::string& name) -> std::optional<std::string> {
    if (name == "LPD_SOCKET") return std::nullopt;
    return env(name);
  };
  json data = pause.to_json();
  data["announcement"] = pause_announcement(
      event, pause, socket_option(socket_path_, protocol::default_socket_path(pause.owner, env_without_socket)));
  events_.publish(std::string(event), std::move(data), pause.run_id, pause.owner);
}

void PauseService::persist(const Pause& pause) {
  try {
    // Not fsync'd: a pause cannot outlive a reboot (its test process does
    // not), and an atomic rename already survives lpd being killed.
    store_.write_json(pause_path(pause), pause.to_json(), /*durable=*/false);
  } catch (const std::exception& e) {
    spdlog::error("cannot write pause {}: {}", pause.pause_id, e.what());
  }
}

void PauseService::arm(const Pause& pause, int pidfd) {
  const std::string id = pause.pause_id;
  auto timer = std::make_unique<boost::asio::steady_timer>(io_);
  timer->expires_after(seconds_to_duration(pause.deadline() - wall_now()));
  timer->async_wait([this, id](boost::system::error_code ec) {
    if (ec) return;
    Pause* p = registry_.find(id);
    if (p && registry_.time_out(id, wall_now())) settle(*p, "pause.timed_out");
  });
  timers_[id] = std::move(timer);
  watch_test_process(pause, pidfd);
}

void PauseService::watch_test_process(const Pause& pause, int pidfd) {
  const std::string id = pause.pause_id;
  auto on_exit = [this, id](const ExitStatus&) {
    Pause* p = registry_.find(id);
    if (!p || p->status != PauseStatus::kPending) return;
    // The watch fires only on a confirmed end (its pidfd woke, or the
    // kernel said "no such process"; a failure to look is retried, never
    // taken for a death). /proc is asked once more only to catch a pidfd
    // that woke while the process still runs: then keep watching.
    if (check_liveness(p->pid, p->pid_start_time) == Liveness::kAlive) {
      spdlog::warn("pause {}: exit watch fired but pid {} still runs; watching again", id, p->pid);
      watch_test_process(*p, -1);
      return;
    }
    if (registry_.mark_stale(id, wall_now())) settle(*p, "pause.stale");
  };
  exit_watches_[id] = pidfd >= 0 ? ExitWatch::adopt(io_, pidfd, std::move(on_exit))
                                 : ExitWatch::start(io_, pause.pid, pause.pid_start_time, std::move(on_exit));
}

void PauseService::settle(Pause& pause, std::string_view event) {
  // The blocked test hears first; the mirror file follows. A crash in
  // between loses nothing: the shim re-sends its pause_id on reconnect.
  auto waiting = waiting_.find(pause.pause_id);
  if (waiting != waiting_.end()) {
    waiting->second.ok(pause.outcome_json());
    waiting_.erase(waiting);
  }
  timers_.erase(pause.pause_id);
  exit_watches_.erase(pause.pause_id);
  publish(event, pause);
  persist(pause);
  spdlog::info("pause {} ({}): {}", pause.pause_id, pause.nodeid, to_string(pause.status));
}

json PauseService::request(const PauseRequest& request, const Peer& requester, const DeferReply& defer) {
  const std::string& run_id = request.run_id;
  Run* run = runs_.find(run_id);
  if (!run) throw Error(ErrorCode::kNotFound, "no run \"" + run_id + "\"; register the run first");
  std::string pause_id = request.pause_id;
  if (pause_id.empty()) pause_id = random_pause_id(random_);
  if (!is_safe_id(pause_id))
    throw Error(ErrorCode::kBadRequest, "pause_id \"" + pause_id + "\" is not valid: letters, digits, '.', '_', '-'");
  const auto kind = pause_kind_from_string(request.kind);
  if (!kind) throw Error(ErrorCode::kBadRequest, "field \"kind\" must be \"failure\" or \"checkpoint\"");

  if (Pause* existing = registry_.find(pause_id)) {
    // A shim re-sending its pause after a reconnect (or a daemon restart).
    // The operation table's gate checked the run; the pause is a second
    // object, which another user (the admin group) may have made in it.
    require_may_act(requester, existing->owner, "pause " + pause_id, access_);
    if (existing->run_id != run_id) throw Error(ErrorCode::kConflict, "pause " + pause_id + " belongs to another run");
    if (existing->status != PauseStatus::kPending) return existing->outcome_json();
    waiting_[pause_id] = defer();
    spdlog::info("pause {} re-attached by pid {}", pause_id, requester.pid);
    return json();
  }
  // Who may pause in the run is the operation table's gate (existing_run).
  if (!run->active) throw Error(ErrorCode::kConflict, "run " + run_id + " has already ended");

  Pause pause;
  pause.pause_id = pause_id;
  pause.run_id = run_id;
  pause.kind = *kind;
  pause.nodeid = request.nodeid;
  pause.task = request.task;
  pause.original_failure = request.original_failure;
  pause.worker_id = request.worker_id;
  pause.hostname = request.hostname;
  pause.cwd = request.cwd;
  pause.pid = requester.pid;
  // A pause lpd cannot watch could never become stale, and without the
  // start time its pid could not be told from a later process: refuse it
  // now, while the requester is there to hear why, rather than keep it on
  // trust. A process already gone (or invisible: pid 0) is no such
  // failure; its pause turns stale at once, as before.
  PinnedProcess pinned = pin_process(requester.pid, 0);
  if (pinned.liveness == Liveness::kUnknown)
    throw Error(ErrorCode::kUnavailable, describe_shortage(pinned.error) + ": lpd cannot watch the process asking (pid " +
                                             std::to_string(requester.pid) +
                                             "), so it could not tell if it died; nothing was paused, try again later");
  pause.pid_start_time = pinned.start_time;
  pause.owner = requester.uid;
  pause.timeout = request.timeout;
  pause.created_at = wall_now();
  // On disk before anyone hears of it, so a restarted lpd knows it too. A
  // pause lpd cannot record (a full disk) is refused now, while the test is
  // there to hear why: kept on trust, it would vanish at the next restart.
  store_.write_json(pause_path(pause), pause.to_json(), /*durable=*/false);
  Pause& added = registry_.add(std::move(pause), nullptr);
  waiting_[pause_id] = defer();
  arm(added, pinned.pidfd.release());
  publish("pause.created", added);
  spdlog::info("pause {} created for {} (run {}, pid {})", pause_id, added.nodeid, run_id, added.pid);
  return json();
}

json PauseService::resume(std::string_view id_or_prefix, const ResumeRequest& request) {
  Pause& pause = registry_.lookup(id_or_prefix);  // its owner passed the dispatcher's gate (owner_of)
  Pause& resumed = registry_.resume(pause.pause_id, request, wall_now());
  settle(resumed, "pause.resumed");
  return resumed.to_json();
}

PausePage PauseService::list(bool all, const std::string& run_id, std::size_t limit,
                             const std::optional<PauseCursor>& after, const PauseView& view) const {
  // A page at a time (as run.list, proc.list): every pause a host kept can
  // be far over the protocol's line limit (any user can make thousands).
  // The cursor is the last pause's (created_at, pause_id), the list's order,
  // so a pause forgotten between two pages does not lose the reader's place.
  PageBudget page(limit, PageLimits::kMaxReplyBytes);
  PausePage out;
  const Pause* last = nullptr;
  bool more = false;
  for (const Pause* pause : registry_.list(all, run_id)) {
    if (after && std::pair(pause->created_at, pause->pause_id) <= std::pair(after->created_at, after->pause_id))
      continue;
    json item = view(*pause);
    if (!page.take(item.dump(-1, ' ', false, json::error_handler_t::replace).size())) {
      more = true;
      break;
    }
    out.pauses.push_back(std::move(item));
    last = pause;
  }
  if (more && last) out.next = PauseCursor{last->created_at, last->pause_id};
  return out;
}

Owned PauseService::owner_of(std::string_view id_or_prefix) {
  const Pause& pause = registry_.lookup(id_or_prefix);
  return {"pause " + pause.pause_id, pause.owner};
}

std::optional<json> PauseService::pending_pause_of(const std::string& run_id, const PauseView& view) const {
  const Run* run = runs_.find(run_id);
  if (!run) throw Error(ErrorCode::kNotFound, "no run \"" + run_id + "\"");
  auto pending = registry_.list(false, run_id);
  if (!pending.empty()) return view(*pending.front());
  if (!run->active) throw Error(ErrorCode::kConflict, "run " + run_id + " is no longer active");
  return std::nullopt;
}

void PauseService::wait_for_pause(const std::string& run_id, std::optional<double> timeout, std::uint64_t session_id,
                                  PauseView view, ReplySink::StreamSlot slot, Responder responder) {
  Watcher& watcher = watchers_.emplace_back();
  watcher.run_id = run_id;
  watcher.responder = std::move(responder);
  watcher.session_id = session_id;
  watcher.view = std::move(view);
  watcher.slot = std::move(slot);
  if (timeout) {
    watcher.timer = std::make_unique<boost::asio::steady_timer>(io_);
    watcher.timer->expires_after(seconds_to_duration(*timeout));
    Watcher* self = &watcher;
    watcher.timer->async_wait([this, self](boost::system::error_code ec) {
      if (ec) return;
      self->responder.fail(ErrorCode::kTimeout, "no pause in run " + self->run_id + " within the timeout");
      watchers_.remove_if([self](const Watcher& w) { return &w == self; });
    });
  }
}

void PauseService::answer_watchers(std::string_view run_id, const Pause* pause, std::string_view run_ended_message) {
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    if (it->run_id != run_id) {
      ++it;
      continue;
    }
    if (pause)
      it->responder.ok({{"pause", it->view(*pause)}});
    else
      it->responder.fail(ErrorCode::kConflict, std::string(run_ended_message));
    if (it->timer) it->timer->cancel();
    it = watchers_.erase(it);
  }
}

void PauseService::on_event(const Event& event) {
  if (event.type == "pause.created") {
    if (const Pause* pause = registry_.find(event.data().value("pause_id", "")))
      answer_watchers(event.run_id, pause, "");
  } else if (event.type == "run.ended") {
    answer_watchers(event.run_id, nullptr, "run " + event.run_id + " is no longer active");
  }
}

void PauseService::peer_gone(const Peer& peer) {
  // A shim that lost its connection keeps its pause pending: it reconnects
  // and re-sends it. Only its process's death (the pidfd) makes it stale.
  watchers_.remove_if([&](const Watcher& w) { return w.session_id == peer.session_id; });
}

void PauseService::restore() {
  const double now = wall_now();
  std::size_t pending = 0;
  for (const auto& run_dir : store_.list_dirs("runs")) {
    for (const auto& file : store_.list("runs/" + run_dir + "/pauses")) {
      if (file.size() < 6 || file.substr(file.size() - 5) != ".json") continue;
      auto stored = store_.read_json("runs/" + run_dir + "/pauses/" + file);
      if (!stored) continue;
      Pause pause = Pause::from_json(*stored);
      if (!is_safe_id(pause.pause_id) || pause.run_id != run_dir) continue;
      Pause& added = registry_.add(std::move(pause), nullptr);
      if (added.status != PauseStatus::kPending) continue;
      PinnedProcess pinned = pin_process(added.pid, added.pid_start_time);
      if (pinned.liveness == Liveness::kGone || pinned.liveness == Liveness::kReused) {
        registry_.mark_stale(added.pause_id, now);
        persist(added);
        continue;
      }
      // kUnknown (lpd could not look) is no death: the pause stays pending
      // and its watch keeps trying until it can.
      if (pinned.liveness == Liveness::kUnknown)
        spdlog::warn("pause {}: cannot tell whether pid {} still runs ({}); kept pending and watched", added.pause_id,
                     added.pid, describe_shortage(pinned.error));
      ++pending;
      arm(added, pinned.pidfd.release());  // a deadline already past fires at once
    }
  }
  spdlog::info("restored {} pending pause(s)", pending);
}

}  // namespace lpd::daemon
