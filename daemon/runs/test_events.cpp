// JobService's side of the shims' one-way messages: which test each process
// is running, how each test ended, and what to record when a process dies.
#include <spdlog/spdlog.h>

#include "daemon/clock.h"
#include "daemon/runs/job_service.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

WorkerActivity* JobService::activity_of(const Peer& peer) {
  auto it = activities_.find(peer.session_id);
  return it == activities_.end() ? nullptr : &it->second;
}

void JobService::worker_joined(const Run& run, const std::string& worker_id, const Peer& peer) {
  int attempt = 1;
  if (Supervised* s = find(run.run_id)) attempt = std::max(1, s->job.attempt);
  activities_.erase(peer.session_id);
  activities_.emplace(peer.session_id, WorkerActivity(run.run_id, worker_id, peer.pid, peer.uid, attempt));
  auto tb = tracebacks_.find(peer.pid);
  if (tb != tracebacks_.end()) activities_.at(peer.session_id).add_traceback(tb->second);
}

void JobService::worker_ended_cleanly(const Peer& peer) {
  if (auto* a = activity_of(peer)) a->clean_end();
}

namespace {

/// A nodeid is a name: metadata every user sees, kept in memory (10,000
/// events), in the run's journal and in JUnit. Bounded so that one test
/// process cannot grow lpd by hundreds of MB with a few events.
constexpr std::size_t kMaxNodeidBytes = 16 * 1024;
/// The outcome and phase words pytest uses ("passed", "call", ...).
constexpr std::size_t kMaxWordBytes = 64;

std::string bounded(const char* name, std::string value, std::size_t limit) {
  if (value.size() > limit)
    throw Error(ErrorCode::kTooLarge, std::string("field \"") + name + "\" is over " + std::to_string(limit) + " bytes");
  return value;
}

}  // namespace

json JobService::handle_test_start(Call& call) {
  auto* a = activity_of(call.peer);
  if (!a) throw Error(ErrorCode::kBadRequest, "test.start before run.register on this connection");
  const std::string nodeid = bounded("nodeid", call.fields.string("nodeid"), kMaxNodeidBytes);
  a->test_started(nodeid, wall_now());
  events_.publish("test.start", {{"nodeid", nodeid}, {"worker_id", a->worker_id()}, {"pid", a->pid()}}, a->run_id(),
                  call.peer.uid);
  return json();
}

json JobService::handle_test_finish(Call& call) {
  auto* a = activity_of(call.peer);
  if (!a) throw Error(ErrorCode::kBadRequest, "test.finish before run.register on this connection");
  TestResult r;
  r.nodeid = bounded("nodeid", call.fields.string("nodeid"), kMaxNodeidBytes);
  r.outcome = bounded("outcome", call.fields.optional_string("outcome").value_or("passed"), kMaxWordBytes);
  r.phase = bounded("phase", call.fields.optional_string("phase").value_or("call"), kMaxWordBytes);
  r.duration = call.fields.optional_seconds("duration").value_or(0);
  r.message = call.fields.optional_string("message").value_or("");
  if (r.message.size() > 4096) r.message.resize(4096);
  r.worker_id = a->worker_id();
  if (Supervised* s = find(a->run_id())) {
    r.attempt = std::max(1, s->job.attempt);
    s->results.push_back(r);
  }
  a->test_finished(r.nodeid);
  events_.publish("test.finish", r.to_json(), a->run_id(), call.peer.uid);
  return json();
}

json JobService::handle_crash_notice(Call& call) {
  auto* a = activity_of(call.peer);
  if (!a) throw Error(ErrorCode::kBadRequest, "crash.notice before run.register on this connection");
  const auto signo = call.fields.integer("signal");
  if (signo <= 0 || signo >= 65) throw Error(ErrorCode::kBadRequest, "field \"signal\" must be a signal number");
  a->crash_notice(static_cast<int>(signo));
  return json();
}

json JobService::handle_collection_finish(Call& call) {
  auto* a = activity_of(call.peer);
  if (!a || a->worker_id() != "controller") return json();
  Supervised* s = find(a->run_id());
  if (!s || s->job.state != JobState::kInProgress) return json();
  bool collect_only = false;
  for (const auto& arg : s->job.spec.argv) collect_only |= arg == "--collect-only" || arg == "--co";
  if (collect_only)
    set_state(*s, JobState::kCollected,
              "collected " + std::to_string(call.fields.optional_integer("count").value_or(0)) + " test(s)");
  return json();
}

json JobService::handle_worker_down(Call& call) {
  // An xdist controller saw one of its workers die and reaped it: it alone
  // knows the wait status, and tells us.
  auto* controller = activity_of(call.peer);
  if (!controller) throw Error(ErrorCode::kBadRequest, "worker.down before run.register on this connection");
  const auto pid = static_cast<pid_t>(call.fields.integer("pid"));
  const auto returncode = call.fields.optional_integer("returncode");
  ProcessEnd end;
  if (returncode && *returncode < 0) end.signal = static_cast<int>(-*returncode);
  if (returncode && *returncode >= 0) end.exit_code = static_cast<int>(*returncode);
  for (auto& p : pending_) {
    if (p->activity.pid() == pid && p->activity.run_id() == controller->run_id()) {
      finalize(*p, end);
      std::erase_if(pending_, [](const auto& q) { return q->activity.run_id().empty(); });
      return json();
    }
  }
  // Its connection's end is still on its way: read what its ring holds, and
  // settle it with the status the controller saw.
  const std::string run_id = controller->run_id();
  drain_sessions_where([&](const WorkerActivity& a) { return a.pid() == pid && a.run_id() == run_id; });
  controller = activity_of(call.peer);
  if (!controller) return json();
  for (auto& [session, activity] : activities_) {
    if (activity.pid() == pid && activity.run_id() == controller->run_id()) {
      auto pending = std::make_unique<Pending>(Pending{activity, end, nullptr});
      activities_.erase(session);
      finalize(*pending, end);
      return json();
    }
  }
  return json();
}

json JobService::handle_traceback_attach(Call& call) {
  // From here on this connection carries faulthandler's raw text, not JSON.
  const pid_t pid = call.peer.pid;
  tracebacks_.erase(pid);
  const bool switched = call.sink->switch_to_raw([this, pid](std::string_view bytes) {
    std::string& text = tracebacks_[pid];
    if (text.size() < WorkerActivity::kMaxTraceback)
      text.append(bytes.substr(0, WorkerActivity::kMaxTraceback - text.size()));
    for (auto& [_, a] : activities_)
      if (a.pid() == pid) a.add_traceback(bytes);
    for (auto& p : pending_)
      if (p->activity.pid() == pid) p->activity.add_traceback(bytes);
  });
  if (!switched) throw Error(ErrorCode::kInternal, "this connection cannot carry a raw stream");
  return {{"raw", true}};
}

void JobService::finalize(Pending& pending, const ProcessEnd& end) {
  Supervised* s = find(pending.activity.run_id());
  if (auto crash = pending.activity.crash_on(end, wall_now())) record_crash(s, std::move(*crash));
  if (pending.watch) pending.watch->cancel();
  pending.activity = WorkerActivity("", "", 0, 0, 0);  // spent; erased by the caller
}

void JobService::finalize_pending_of(const std::string& run_id, const std::optional<ProcessEnd>& controller_end) {
  for (auto& p : pending_) {
    if (p->activity.run_id() != run_id) continue;
    const bool controller = p->activity.worker_id() == "controller";
    finalize(*p, controller && controller_end ? *controller_end : p->end.value_or(ProcessEnd{}));
  }
  std::erase_if(pending_, [](const auto& p) { return p->activity.run_id().empty(); });
}

void JobService::peer_gone(const Peer& peer) {
  drop_attaches(peer.session_id);
  auto it = activities_.find(peer.session_id);
  if (it == activities_.end()) return;
  WorkerActivity activity = std::move(it->second);
  activities_.erase(it);
  if (activity.ended_cleanly() && !activity.current_test()) return;
  // The process may be dead (a crash) or may only have lost its socket.
  // Its end is settled by worker.down, by its attempt's end, or (runs
  // that lpd does not supervise) by its pidfd.
  auto pending = std::make_unique<Pending>(Pending{std::move(activity), std::nullopt, nullptr});
  Pending* raw = pending.get();
  if (!find(raw->activity.run_id())) {
    raw->watch = ExitWatch::start(io_, raw->activity.pid(), [this, raw] {
      finalize(*raw, ProcessEnd{});
      std::erase_if(pending_, [](const auto& p) { return p->activity.run_id().empty(); });
    });
  }
  // A supervised run's processes are settled by worker.down or the attempt's end.
  pending_.push_back(std::move(pending));
}

}  // namespace lpd::daemon
