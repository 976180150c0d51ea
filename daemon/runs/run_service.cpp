#include "daemon/runs/run_service.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "daemon/core/clock.h"
#include "daemon/core/paging.h"
#include "daemon/os/process_identity.h"
#include "daemon/core/storage_failure.h"
#include "daemon/core/untrusted_file.h"

namespace lpd::daemon {

RunService::RunService(boost::asio::io_context& io, EventBus& events, const StateStore& store, RunRegistry& registry,
                       RunWatcher& watcher)
    : io_(io), events_(events), store_(store), registry_(registry), watcher_(watcher) {}

void RunService::persist(const Run& run) {
  try {
    store_.write_json("runs/" + run.run_id + "/run.json", run.to_json(), /*durable=*/false);
  } catch (const std::exception& e) {
    spdlog::error("cannot write run {}: {}", run.run_id, e.what());
  }
}

RunJoined RunService::join(JoinRequest request, const Peer& peer) {
  request.pid = peer.pid;
  request.uid = peer.uid;
  request.session_id = peer.session_id;
  if (!request.worker_id.empty() && !is_safe_id(request.worker_id))
    throw protocol::Error(protocol::ErrorCode::kBadRequest, "worker_id \"" + request.worker_id + "\" is not valid");
  const double now = wall_now();
  const bool is_new = request.run_id.empty() || registry_.find(request.run_id) == nullptr;
  Run& run = registry_.join(request, registry_.unused_run_id("", now, [this] { return random_(); }), now);
  controller_watches_.erase(run.run_id);  // it is connected again
  if (is_new) {
    // (full disk) A new run lpd cannot record would vanish at
    // the next restart, with its pauses: refuse it while the shim is there
    // to hear why (`unavailable`, naming the directory and the cause).
    try {
      store_.write_json("runs/" + run.run_id + "/run.json", run.to_json(), /*durable=*/false);
    } catch (const StorageFailure&) {
      const std::string run_dir = store_.path("runs/" + run.run_id);
      registry_.erase(run.run_id);  // `run` is gone from here on
      // Nothing half-created: the directory made for run.json goes too
      // (rmdir: only when empty, and never through a link).
      ::rmdir(run_dir.c_str());
      throw;
    }
  } else {
    persist(run);
  }
  if (is_new) events_.publish("run.started", run.to_json(), run.run_id, run.owner);
  const std::string worker = request.worker_id.empty() ? "controller" : request.worker_id;
  watcher_.worker_joined(run, worker, peer);
  spdlog::info("run {}: {} (pid {}) joined", run.run_id, worker, request.pid);
  return {run.run_id, worker, is_new};
}

bool RunService::end_part(const Peer& peer) {
  // "ended" says whether this connection had a part in a run that
  // it now ended; a connection in no run (another user naming someone's
  // run) changes nothing and is told so.
  const bool had_part = registry_.has_part(peer.session_id);
  registry_.finish(peer.session_id);
  watcher_.worker_ended_cleanly(peer);
  return had_part;
}

// -- the pid run.list shows ------------------------------------------
json RunService::command_pid(const Run& run) const {
  // A run of a command without the shim has no controller pid; its
  // command's pid is in lpd-monitor's status file (JobService's
  // status_path: runs/ID/exit.json), written once the command is forked.
  // A few hundred bytes; anything larger is not the monitor's file.
  if (!run.supervised) return nullptr;
  const auto text = read_untrusted_file(store_.path("runs/" + run.run_id + "/exit.json"), 64 * 1024);
  if (!text) return nullptr;
  const json status = json::parse(*text, nullptr, false);
  if (!status.is_object()) return nullptr;
  const auto pid = status.find("pid");
  if (pid == status.end() || !pid->is_number_integer() || pid->get<long long>() <= 0) return nullptr;
  return *pid;
}

RunPage RunService::list(bool all, std::size_t limit, const std::optional<RunRegistry::Cursor>& after,
                         const RunView& view) const {
  // The cursor is the previous page's "next": a place in the order, so a
  // run removed between two pages does not lose the reader's place.
  PageBudget page(limit, PageLimits::kMaxReplyBytes);
  RunPage out;
  std::optional<RunRegistry::Cursor> last;
  bool more = false;
  registry_.visit_after(all, after, [&](const Run& run) {
    json record = run.to_json();
    if (run.pid == 0) record["pid"] = command_pid(run);  // never a pid of 0
    json item = view(run, std::move(record));
    if (!page.take(item.dump().size())) {
      more = true;
      return false;
    }
    out.runs.push_back(std::move(item));
    last = RunRegistry::Cursor{run.created_at, run.run_id};
    return true;
  });
  if (more) out.next = last;
  return out;
}

void RunService::ended(Run& run) {
  persist(run);
  controller_watches_.erase(run.run_id);
  spdlog::info("run {} ended", run.run_id);
  events_.publish("run.ended", {{"run_id", run.run_id}, {"ended_at", run.ended_at}}, run.run_id, run.owner);
  watcher_.run_ended(run);
}

void RunService::peer_gone(const Peer& peer) {
  for (Run* run : registry_.peer_gone(peer.session_id, wall_now())) ended(*run);
}

void RunService::watch_controller(const Run& run) {
  const std::string run_id = run.run_id;
  controller_watches_[run_id] = ExitWatch::start(io_, run.pid, [this, run_id](const ExitStatus&) {
    Run* r = registry_.find(run_id);
    if (!r || !r->active) return;
    auto controller = r->workers.find("controller");
    if (controller != r->workers.end() && controller->second.session_id != 0) return;  // reconnected
    if (registry_.end(run_id, wall_now())) ended(*r);
  });
}

void RunService::restore() {
  for (const auto& dir : store_.list_dirs("runs")) {
    auto json_run = store_.read_json("runs/" + dir + "/run.json");
    if (!json_run) continue;
    Run run = Run::from_json(*json_run);
    if (run.run_id != dir || !is_safe_id(run.run_id)) continue;
    registry_.restore(run);
    Run* restored = registry_.find(run.run_id);
    // A run no shim registered (a command under lpctl run that is not
    // pytest) has no controller to watch: its job (JobService) ends it.
    if (restored->active && restored->pid > 0) watch_controller(*restored);
  }
  spdlog::info("restored {} active run(s)", registry_.active_count());
}

}  // namespace lpd::daemon
