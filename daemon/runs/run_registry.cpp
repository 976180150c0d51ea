#include "daemon/runs/run_registry.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "protocol/error.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

namespace {
const std::string kController = "controller";
}

bool is_safe_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(id[0])) return false;
  return std::all_of(id.begin(), id.end(), [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; });
}

std::string make_run_id(double now, std::uint32_t random) {
  const std::time_t t = static_cast<std::time_t>(now);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d%02d%02d-%02d%02d%02d-%06x", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, random & 0xffffffu);
  return buf;
}

std::string RunRegistry::unused_run_id(std::string_view prefix, double now,
                                       const std::function<std::uint32_t()>& random) const {
  for (;;) {
    std::string id = std::string(prefix) + make_run_id(now, random());
    if (!runs_.count(id)) return id;
  }
}

Run& RunRegistry::join(const JoinRequest& request, const std::string& new_run_id, double now) {
  const std::string& id = request.run_id.empty() ? new_run_id : request.run_id;
  if (!is_safe_id(id))
    throw Error(ErrorCode::kBadRequest,
                "run id \"" + id + "\" is not valid: use letters, digits, '.', '_' and '-' (max 64)");
  const std::string worker_id = request.worker_id.empty() ? kController : request.worker_id;
  auto it = runs_.find(id);
  if (it == runs_.end()) {
    check_room_for_run(request.uid);
    Run run;
    run.run_id = id;
    run.owner = request.uid;
    run.pid = request.pid;
    run.hostname = request.hostname;
    run.cwd = request.cwd;
    run.argv = bounded_argv(request.argv);
    run.created_at = now;
    order_.emplace(run.created_at, id);
    it = runs_.emplace(id, std::move(run)).first;
  }
  Run& run = it->second;
  if (run.owner != request.uid && request.uid != 0)
    throw Error(ErrorCode::kPermissionDenied, "run " + id + " belongs to uid " + std::to_string(run.owner));
  if (!run.active) throw Error(ErrorCode::kConflict, "run " + id + " has already ended");
  if (worker_id == kController) {
    run.pid = request.pid;
    // A supervised run keeps the command lpctl run started (what run.started
    // said), not the argv of the pytest process inside it that joined.
    if (!request.cwd.empty() && !run.supervised) run.cwd = request.cwd;
    if (!request.argv.empty() && !run.supervised) run.argv = bounded_argv(request.argv);
    if (!request.hostname.empty()) run.hostname = request.hostname;
  }
  // Ended workers stay on the run (run.list shows them) and each join
  // rewrites run.json: without a bound one user could grow both without end.
  if (!run.workers.count(worker_id) && run.workers.size() >= kMaxWorkersPerRun)
    throw Error(ErrorCode::kLimitExceeded, "run " + id + " already has " + std::to_string(kMaxWorkersPerRun) +
                                               " workers, the most one run may have");
  Worker& worker = run.workers[worker_id];
  worker.worker_id = worker_id;
  worker.pid = request.pid;
  worker.session_id = request.session_id;
  worker.finished = false;
  if (request.session_id != 0) runs_of_session_[request.session_id].insert(id);
  return run;
}

Run* RunRegistry::find(std::string_view run_id) {
  auto it = runs_.find(run_id);
  return it == runs_.end() ? nullptr : &it->second;
}

void RunRegistry::restore(Run run) {
  const std::string id = run.run_id;
  for (auto& [_, worker] : run.workers) worker.session_id = 0;
  if (auto old = runs_.find(id); old != runs_.end()) order_.erase({old->second.created_at, id});
  order_.emplace(run.created_at, id);
  runs_.insert_or_assign(id, std::move(run));
}

template <typename Visit>
void RunRegistry::visit_workers_of(std::uint64_t session_id, Visit visit) {
  if (session_id == 0) return;
  const auto joined = runs_of_session_.find(session_id);
  if (joined == runs_of_session_.end()) return;
  for (const auto& run_id : joined->second) {
    Run* run = find(run_id);
    if (!run) continue;  // removed since
    for (auto& [worker_id, worker] : run->workers)
      if (worker.session_id == session_id) visit(*run, worker_id, worker);
  }
}

void RunRegistry::finish(std::uint64_t session_id) {
  visit_workers_of(session_id, [](Run&, const std::string&, Worker& worker) { worker.finished = true; });
}

bool RunRegistry::has_part(std::uint64_t session_id) const {
  bool found = false;
  const_cast<RunRegistry*>(this)->visit_workers_of(session_id,
                                                    [&found](Run&, const std::string&, Worker&) { found = true; });
  return found;
}

std::vector<Run*> RunRegistry::peer_gone(std::uint64_t session_id, double now) {
  std::vector<Run*> ended;
  visit_workers_of(session_id, [&](Run& run, const std::string& worker_id, Worker& worker) {
    worker.session_id = 0;
    if (worker_id == kController && run.active && !run.supervised) {
      run.active = false;
      run.ended_at = now;
      ended.push_back(&run);
    }
  });
  runs_of_session_.erase(session_id);
  return ended;
}

bool RunRegistry::end(std::string_view run_id, double now) {
  Run* run = find(run_id);
  if (!run || !run->active) return false;
  run->active = false;
  run->ended_at = now;
  return true;
}

std::vector<const Run*> RunRegistry::list(bool include_ended) const {
  std::vector<const Run*> out;
  visit_after(include_ended, std::nullopt, [&out](const Run& run) {
    out.push_back(&run);
    return true;
  });
  return out;
}

void RunRegistry::visit_after(bool include_ended, const std::optional<Cursor>& after,
                              const std::function<bool(const Run&)>& visit) const {
  auto it = after ? order_.upper_bound({after->created_at, after->run_id}) : order_.begin();
  for (; it != order_.end(); ++it) {
    auto run = runs_.find(it->second);
    if (run == runs_.end() || (!include_ended && !run->second.active)) continue;
    if (!visit(run->second)) return;
  }
}

bool RunRegistry::erase(std::string_view run_id) {
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return false;
  order_.erase({it->second.created_at, it->second.run_id});
  runs_.erase(it);
  return true;
}

void RunRegistry::check_room_for_run(uid_t uid) const {
  if (uid == 0) return;
  const auto active = static_cast<std::size_t>(std::count_if(
      runs_.begin(), runs_.end(), [uid](const auto& entry) { return entry.second.active && entry.second.owner == uid; }));
  if (active >= kMaxActiveRunsPerUser)
    throw Error(ErrorCode::kLimitExceeded, "uid " + std::to_string(uid) + " already has " + std::to_string(active) +
                                               " active runs, the most one user may have; end some first");
}

std::size_t RunRegistry::active_count() const {
  return static_cast<std::size_t>(
      std::count_if(runs_.begin(), runs_.end(), [](const auto& entry) { return entry.second.active; }));
}

}  // namespace lpd::daemon
