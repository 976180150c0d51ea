// JobService's side of the shims' one-way messages: which test each process
// is running, how each test ended, and what to record when a process dies.
#include <set>

#include <spdlog/spdlog.h>

#include "daemon/core/clock.h"
#include "daemon/core/event_ring_mapping.h"
#include "daemon/crashes/crash_rules.h"
#include "daemon/core/event_ring_mapping.h"
#include "protocol/json_text.h"
#include "daemon/jobs/job_service.h"

namespace lpd::daemon {

// String literals appended with their length known: `+= "..."` went through
// strlen, 6% of lpd's instructions per test.
using namespace std::string_view_literals;

using protocol::Error;
using protocol::ErrorCode;

WorkerActivity* JobService::activity_of(const Peer& peer) {
  auto it = activities_.find(peer.session_id);
  return it == activities_.end() ? nullptr : &it->second;
}

WorkerActivity* JobService::registered(const Peer& peer, const char* op) {
  auto* activity = activity_of(peer);
  if (!activity) throw Error(ErrorCode::kBadRequest, std::string(op) + " before run.register on this connection");
  return activity;
}

void JobService::worker_joined(const Run& run, const std::string& worker_id, const Peer& peer) {
  int attempt = 1;
  if (Supervised* s = find(run.run_id)) {
    attempt = std::max(1, s->job.attempt);
    if (!s->job.shim_joined) {
      s->job.shim_joined = true;  // lpctl then does not ask whether the command has a shim
      persist(*s);
    }
  }
  activities_.erase(peer.session_id);
  activities_.emplace(peer.session_id, WorkerActivity(run.run_id, worker_id, peer.pid, peer.uid, attempt));
  auto tb = tracebacks_.find(peer.pid);
  if (tb != tracebacks_.end()) activities_.at(peer.session_id).add_traceback(tb->second.text());
}

void JobService::worker_ended_cleanly(const Peer& peer) {
  if (auto* a = activity_of(peer)) a->clean_end();
}

void JobService::test_started(const Peer& peer, TestStart start) {
  auto* a = registered(peer, "test.start");
  // A test.start read from the event ring: its position is what the ring's
  // phase mark names while this test runs (test.phase records no longer come).
  std::optional<std::uint64_t> ring_position;
  if (const auto& ring = peer.ring) {
    ring_position = ring->reader().record_position();
    if (ring_position && !a->watches_phase_marks())
      a->watch_phase_marks([weak = std::weak_ptr<MappedEventRing>(ring)]() -> std::optional<protocol::PhaseMark> {
        // Weak: lpd lets go of a ring when its connection ends or it is
        // found corrupt; peer_gone settles the phase before that.
        if (const auto mapped = weak.lock()) return mapped->reader().phase_mark();
        return std::nullopt;
      });
  }
  a->test_started(start.nodeid, wall_now(), ring_position, start.phase);
  if (Supervised* s = find(a->run_id()); s && !s->job.tests_reported) {
    s->job.tests_reported = true;  // this command reports its tests: no testcase for the command itself
    persist(*s);
  }
  // {"nodeid":...,"pid":N,"worker_id":...}, written as text: one per test.
  std::string data = "{\"nodeid\":";
  protocol::append_json_string(data, start.nodeid);
  data += ",\"pid\":"sv;
  protocol::append_json_integer(data, a->pid());
  data += ",\"worker_id\":"sv;
  protocol::append_json_string(data, a->worker_id());
  data += '}';
  events_.publish_text("test.start", std::move(data), a->run_id(), peer.uid);
}

void JobService::test_finished(const Peer& peer, TestResult r) {
  auto* a = registered(peer, "test.finish");
  r.worker_id = a->worker_id();
  Supervised* s = find(a->run_id());
  if (s) {
    r.attempt = std::max(1, s->job.attempt);
    if (!s->told_by_controller.empty() &&
        s->told_by_controller.erase({r.attempt, r.worker_id, r.nodeid}) != 0) {
      // Its controller gave this result while the worker could not: the
      // same test, heard twice (this stop's attack: 137 of 1,500 tests
      // twice after two quick restarts under -n 2).
      a->test_finished(r.nodeid);
      return;
    }
    keep_within_budget(r, s->failure_text_bytes);
  } else {
    keep_within_budget(r, unsupervised_failure_text_[a->run_id()]);
  }
  a->test_finished(r.nodeid);
  std::string data = r.to_json_text();
  if (s) s->results.push_back(std::move(r));  // moved, not copied: this runs once per test
  events_.publish_text("test.finish", std::move(data), a->run_id(), peer.uid);
}

void JobService::crash_noticed(const Peer& peer, int signo) { registered(peer, "crash.notice")->crash_notice(signo); }

void JobService::collection_finished(const Peer& peer, std::int64_t count) {
  auto* a = activity_of(peer);
  if (!a) return;
  Supervised* s = find(a->run_id());
  if (!s || s->job.state != JobState::kInProgress) return;
  // Room for every result at once: growing by doubling moved each result
  // about once more and faulted in fresh pages each time (6-12% of lpd's
  // CPU per test). Every xdist worker collects the whole suite, so any
  // process's count will do. Only address space until used, and bounded
  // whatever the count claims.
  if (count > 0) s->results.reserve(static_cast<std::size_t>(std::min<std::int64_t>(count, 250'000)));
  if (a->worker_id() != "controller") return;
  if (s->job.collect_only()) step_job(*s, JobEvent::kCollected, "collected " + std::to_string(count) + " test(s)");
}

void JobService::worker_down(const Peer& peer, const WorkerDown& down) {
  // An xdist controller saw one of its workers die and reaped it: it alone
  // knows the wait status, and tells us.
  auto* controller = registered(peer, "worker.down");
  const pid_t pid = down.pid;
  const ExitStatus& end = down.end;
  for (auto& p : pending_) {
    if (p->activity.pid() == pid && p->activity.run_id() == controller->run_id()) {
      finalize(*p, end);
      std::erase_if(pending_, [](const auto& q) { return q->activity.run_id().empty(); });
      return;
    }
  }
  // Its connection's end is still on its way: read what its ring holds, and
  // settle it with the status the controller saw.
  const std::string run_id = controller->run_id();
  drain_sessions_where([&](const WorkerActivity& a) { return a.pid() == pid && a.run_id() == run_id; });
  controller = activity_of(peer);
  if (!controller) return;
  for (auto& [session, activity] : activities_) {
    if (activity.pid() == pid && activity.run_id() == controller->run_id()) {
      auto pending = std::make_unique<Pending>(Pending{activity, end, nullptr});
      activities_.erase(session);
      finalize(*pending, end);
      return;
    }
  }
}

void JobService::worker_results(const Peer& peer, WorkerResults told) {
  const std::string run_id = registered(peer, "worker.results")->run_id();
  if (!find(run_id)) return;  // not a supervised run: lpd keeps no results for it
  // What that worker's own ring still holds first (which test it was in).
  drain_sessions_where([&](const WorkerActivity& a) { return a.run_id() == run_id && a.worker_id() == told.worker_id; });
  Supervised* s = find(run_id);  // draining dispatched messages; look again
  if (!s) return;
  const int attempt = std::max(1, s->job.attempt);
  std::set<std::string, std::less<>> known;
  for (const auto& r : s->results)
    if (r.attempt == attempt) known.insert(r.nodeid);
  // The test that worker was still in, as its own shim said (a test.start
  // and no test.finish): the controller may have seen it pass every phase,
  // yet the worker died in it (a __del__ or a hook after the teardown
  // report). Its crash is pinned there; the copy is no result.
  auto still_in = [&](const WorkerActivity& a) {
    if (a.run_id() == s->run_id && a.worker_id() == told.worker_id && a.current_test())
      known.insert(*a.current_test());
  };
  for (const auto& [_, a] : activities_) still_in(a);
  for (const auto& p : pending_) still_in(p->activity);
  std::size_t added = 0;
  for (auto& r : told.results) {
    if (!known.insert(r.nodeid).second) continue;  // lpd heard it from the worker itself
    s->told_by_controller.emplace(attempt, told.worker_id, r.nodeid);
    add_result(*s, std::move(r), /*told_by_controller=*/true);
    ++added;
  }
  if (added > 0) {
    // The command reports its tests, though lpd heard them only this way
    // (workers lpd refused, or that died while it was away).
    if (!s->job.tests_reported) {
      s->job.tests_reported = true;
      persist(*s);
    }
    spdlog::info("run {}: {} result(s) of worker {} came from its controller only", s->run_id, added,
                 told.worker_id);
  }
}

void JobService::worker_crashed(const Peer& peer, const WorkerCrashed& told) {
  auto* controller = registered(peer, "worker.crashed");
  const std::string run_id = controller->run_id();
  Supervised* s = find(run_id);
  if (s && s->job.stop_requested) return;  // a stop's casualties are interrupted, not crashed
  // A plain `pytest -n N` (no job) counts too: lpd may have been restarted
  // while the worker ran, never hearing from it again; only the controller
  // saw it die.
  const Run* run = s ? nullptr : runs_.find(run_id);
  if (!s && !run) return;
  const int attempt = s ? std::max(1, s->job.attempt) : 1;
  for (const Crash* c : crashes_.of_run(run_id))
    if (same_death(*c, attempt, told.pid) ||
        (c->attempt == attempt && c->nodeid == told.nodeid && c->worker_id == told.worker_id))
      return;  // lpd saw this worker die itself
  record_crash(s, crash_told_by_controller(run_id, told.worker_id, told.nodeid, told.pid, told.returncode, attempt,
                                           s ? s->owner : run->owner, wall_now()));
}

bool JobService::attach_traceback(const Peer& peer, ReplySink& sink) {
  // From here on this connection carries faulthandler's raw text, not JSON.
  const pid_t pid = peer.pid;
  tracebacks_.erase(pid);
  // The process's stderr, when its shim passed it: the traceback goes to
  // the console too, as plain pytest would print it. Written as the peer
  // (the process the descriptor came from), never by lpd itself.
  std::shared_ptr<ConsoleEcho> echo = ConsoleEcho::make(
      io_, UniqueFd(sink.take_passed_fd()), Credentials{peer.uid, peer.gid, peer.groups});
  const bool switched = sink.switch_to_raw([this, pid, echo](std::string_view bytes) {
    if (echo) echo->write(bytes);
    tracebacks_[pid].add(bytes);
    for (auto& [_, a] : activities_)
      if (a.pid() == pid) a.add_traceback(bytes);
    for (auto& p : pending_)
      if (p->activity.pid() == pid) p->activity.add_traceback(bytes);
  });
  if (!switched) throw Error(ErrorCode::kBadRequest, "this connection cannot carry a raw stream (traceback.attach is for "
                                                  "the Unix socket; HTTP and WebSocket clients cannot use it)");
  return echo != nullptr;
}

void JobService::finalize(Pending& pending, const ExitStatus& end) {
  Supervised* s = find(pending.activity.run_id());
  settle_end(s, pending.activity, end);
  if (pending.watch) pending.watch->cancel();
  pending.activity = WorkerActivity("", "", 0, 0, 0);  // spent; erased by the caller
}

bool JobService::untold_worker(const Pending& pending) {
  return pending.activity.worker_id() != "controller" && !pending.end &&
         pending.activity.left_after_its_tests_without_a_sign();
}

bool JobService::let_go_untold_worker(Pending& pending) {
  // A worker is judged by what its controller saw (worker.down): one that
  // died in a test, or of a signal, was told of. Told nothing, after its
  // tests and without a sign, it was ended by xdist itself (the attack:
  // 15,000 tests, 1,500 failing, two "crashes" plain pytest never had).
  if (!untold_worker(pending)) return false;
  spdlog::info("run {}: worker {} (pid {}) left after its tests without ending its session, and its controller "
               "saw nothing wrong: not a crash",
               pending.activity.run_id(), pending.activity.worker_id(), pending.activity.pid());
  if (pending.watch) pending.watch->cancel();
  pending.activity = WorkerActivity("", "", 0, 0, 0);  // spent; erased by the caller
  return true;
}

void JobService::run_ended(const Run& run) {
  if (find(run.run_id)) return;  // a supervised run's processes are settled at its attempt's end
  if (auto it = unsupervised_failure_text_.find(run.run_id); it != unsupervised_failure_text_.end())
    unsupervised_failure_text_.erase(it);
  for (auto& p : pending_)
    if (p->activity.run_id() == run.run_id) let_go_untold_worker(*p);
  std::erase_if(pending_, [](const auto& p) { return p->activity.run_id().empty(); });
}

void JobService::finalize_pending_of(const std::string& run_id, const std::optional<ExitStatus>& controller_end) {
  for (auto& p : pending_) {
    if (p->activity.run_id() != run_id) continue;
    const bool controller = p->activity.worker_id() == "controller";
    if (let_go_untold_worker(*p)) continue;
    finalize(*p, controller && controller_end ? *controller_end : p->end.value_or(ExitStatus{}));
  }
  std::erase_if(pending_, [](const auto& p) { return p->activity.run_id().empty(); });
}

void JobService::peer_gone(const Peer& peer) {
  drop_attaches(peer.session_id);
  auto it = activities_.find(peer.session_id);
  if (it == activities_.end()) return;
  WorkerActivity activity = std::move(it->second);
  activities_.erase(it);
  activity.settle_phase();  // the ring's mark, while the peer still holds its mapping
  // A clean session end is not the process's end: an atexit handler or the
  // interpreter's shutdown may still crash it. A supervised run's process is
  // judged when its end is known (worker.down, the attempt's end); only an
  // unsupervised one, whose exit status lpd never learns, is let go here.
  if (activity.ended_cleanly() && !activity.current_test() && !find(activity.run_id())) return;
  // The process may be dead (a crash) or may only have lost its socket.
  // Its end is settled by worker.down, by its attempt's end, or (runs
  // that lpd does not supervise) by its pidfd.
  auto pending = std::make_unique<Pending>(Pending{std::move(activity), std::nullopt, nullptr});
  Pending* raw = pending.get();
  if (!find(raw->activity.run_id())) {
    // One pidfd per process, however many of its connections closed: a
    // live process opening and closing connections (a worker id each) took
    // one descriptor per connection, and ran lpd out of them for everyone
    // (the attack). The watch settles every pending connection of the pid.
    const pid_t pid = raw->activity.pid();
    const bool watched = std::any_of(pending_.begin(), pending_.end(), [pid](const auto& p) {
      return p->watch && p->activity.pid() == pid;
    });
    if (!watched)
      raw->watch = ExitWatch::start(io_, pid, [this, pid](const ExitStatus&) {
        for (auto& p : pending_) {
          if (p->activity.pid() != pid || p->activity.run_id().empty() || find(p->activity.run_id())) continue;
          // A worker its controller may still tell of (worker.down) waits
          // for that or for its run's end (run_ended).
          const Run* run = runs_.find(p->activity.run_id());
          if (untold_worker(*p) && run && run->active) continue;
          if (!let_go_untold_worker(*p)) finalize(*p, ExitStatus{});
        }
        std::erase_if(pending_, [](const auto& p) { return p->activity.run_id().empty(); });
      });
  }
  // A supervised run's processes are settled by worker.down or the attempt's end.
  pending_.push_back(std::move(pending));
}

}  // namespace lpd::daemon

// -- phases, failures outside tests, what was collected --------

namespace lpd::daemon {

void JobService::phase_changed(const Peer& peer, const PhaseChange& change) {
  auto* a = registered(peer, "test.phase");
  if (change.of_test) {
    // A phase of a test other than the running one (a lost test.start) says nothing about it.
    if (a->current_test() && (change.nodeid.empty() || change.nodeid == *a->current_test())) a->phase(change.phase);
  } else {
    a->session_phase(change.phase);
  }
}

void JobService::session_error(const Peer& peer, TestResult r) {
  auto* a = registered(peer, "session.error");
  r.worker_id = a->worker_id();
  a->session_phase(r.phase);
  Supervised* s = find(a->run_id());
  if (s) {
    r.attempt = std::max(1, s->job.attempt);
    keep_within_budget(r, s->failure_text_bytes);
  } else {
    keep_within_budget(r, unsupervised_failure_text_[a->run_id()]);
  }
  // Published as a test.finish (marked), so a restarted lpd reads it back
  // from the run's journal with the other results.
  json data = r.to_json();
  data["session_error"] = true;
  events_.publish("test.finish", data, a->run_id(), peer.uid);
  if (s) s->results.push_back(std::move(r));
}

void JobService::keep_collected(const Supervised& s, std::size_t from) {
  if (from >= s.collected.size()) return;
  // One line per message, a JSON array: a restarted lpd reads them back
  // (load_history), so the tests that never ran are still listed then.
  // Written as text: no JSON tree of every nodeid (one per test of a run).
  std::string line = "[";
  for (std::size_t i = from; i < s.collected.size(); ++i) {
    if (i > from) line += ',';
    protocol::append_json_string(line, s.collected[i]);
  }
  line += ']';
  try {
    append_line(store_.path("runs/" + s.run_id + "/" + std::string(kCollectedFile)), line, /*durable=*/false);
  } catch (const std::exception& e) {
    spdlog::warn("run {}: cannot keep its collected nodeids: {}; a restarted lpd would not list the tests "
                 "that never ran",
                 s.run_id, e.what());
  }
}

bool JobService::add_collected(Supervised& s, std::string nodeid) {
  if (s.collected.size() >= kMaxCollectedPerRun || s.collected_bytes + nodeid.size() > kMaxCollectedBytesPerRun) {
    if (!s.collected_full) {
      s.collected_full = true;
      spdlog::warn("run {}: collected {} nodeids ({} bytes): the rest are not kept, and tests among them that "
                   "never ran are not listed in its report", s.run_id, s.collected.size(), s.collected_bytes);
    }
    return false;
  }
  if (!s.collected_index.insert(nodeid).second) return true;
  s.collected_bytes += nodeid.size();
  s.collected.push_back(std::move(nodeid));
  return true;
}

void JobService::collected(const Peer& peer, std::vector<std::string> nodeids) {
  auto* a = registered(peer, "collection.items");
  Supervised* s = find(a->run_id());
  if (!s) return;  // only a supervised run's report lists what never ran
  const std::size_t before = s->collected.size();
  for (auto& nodeid : nodeids)
    if (!add_collected(*s, std::move(nodeid))) break;
  keep_collected(*s, before);
  // Room for a result per collected test (an xdist controller sends no
  // count, and its list may arrive after its workers' first results): at
  // least doubling, so chunks arriving among results move them rarely.
  if (s->results.capacity() < s->collected.size())
    s->results.reserve(std::min<std::size_t>(std::max(s->collected.size(), 2 * s->results.capacity()), 250'000));
}

}  // namespace lpd::daemon
