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
/// The outcomes a test.finish (or a controller's worker.results) may say:
/// one lpd does not know would be reported as something it is not.
const std::set<std::string, std::less<>> kOutcomes = {"passed", "failed", "error", "skipped", "interrupted"};
/// A test's short failure text (reprcrash.message), skip or xfail reason,
/// and the external failure reason: cut, not refused, past this.
constexpr std::size_t kMaxMessageBytes = 4096;

std::string bounded(const char* name, std::string value, std::size_t limit) {
  if (value.size() > limit)
    throw Error(ErrorCode::kTooLarge, std::string("field \"") + name + "\" is over " + std::to_string(limit) + " bytes");
  return value;
}

}  // namespace

json JobService::handle_test_start(Call& call) {
  auto* a = registered(call.peer, "test.start");
  const std::string nodeid = bounded("nodeid", call.fields.string("nodeid"), kMaxNodeidBytes);
  // A test.start read from the event ring: its position is what the ring's
  // phase mark names while this test runs (test.phase records no longer come).
  std::optional<std::uint64_t> ring_position;
  if (const auto& ring = call.peer.ring) {
    ring_position = ring->reader().record_position();
    if (ring_position && !a->watches_phase_marks())
      a->watch_phase_marks([weak = std::weak_ptr<MappedEventRing>(ring)]() -> std::optional<protocol::PhaseMark> {
        // Weak: lpd lets go of a ring when its connection ends or it is
        // found corrupt; peer_gone settles the phase before that.
        if (const auto mapped = weak.lock()) return mapped->reader().phase_mark();
        return std::nullopt;
      });
  }
  // The phase it starts in: pytest's shim sends none (setup comes first);
  // the native shim says "call" (its API has no phases: the body runs next).
  const std::string phase = call.fields.optional_string("phase").value_or("setup");
  if (phase != "setup" && phase != "call")
    throw Error(ErrorCode::kBadRequest, "field \"phase\" of test.start must be setup or call, not \"" +
                                            bounded("phase", phase, kMaxWordBytes) + "\"");
  a->test_started(nodeid, wall_now(), ring_position, phase);
  if (Supervised* s = find(a->run_id()); s && !s->job.tests_reported) {
    s->job.tests_reported = true;  // this command reports its tests: no testcase for the command itself
    persist(*s);
  }
  // {"nodeid":...,"pid":N,"worker_id":...}, written as text: one per test.
  std::string data = "{\"nodeid\":";
  protocol::append_json_string(data, nodeid);
  data += ",\"pid\":";
  protocol::append_json_integer(data, a->pid());
  data += ",\"worker_id\":";
  protocol::append_json_string(data, a->worker_id());
  data += '}';
  events_.publish_text("test.start", std::move(data), a->run_id(), call.peer.uid);
  return json();
}

json JobService::handle_test_finish(Call& call) {
  auto* a = registered(call.peer, "test.finish");
  const auto& f = call.fields;
  TestResult r;
  r.nodeid = bounded("nodeid", f.string("nodeid"), kMaxNodeidBytes);
  r.outcome = bounded("outcome", f.optional_string("outcome").value_or("passed"), kMaxWordBytes);
  // An outcome lpd does not know would be reported as something it is not.
  if (!kOutcomes.count(r.outcome))
    throw Error(ErrorCode::kBadRequest,
                "field \"outcome\" must be passed, failed, error, skipped or interrupted, not \"" + r.outcome + "\"");
  r.phase = bounded("phase", f.optional_string("phase").value_or("call"), kMaxWordBytes);
  r.duration = f.optional_seconds("duration").value_or(0);
  r.message = truncated_text(f.optional_string("message").value_or(""), kMaxMessageBytes);
  // The JUnit fields (the shim computes them as pytest's --junitxml would).
  r.longrepr = truncated_text(f.optional_string("longrepr").value_or(""), kMaxLongrepr);
  r.file = bounded("file", f.optional_string("file").value_or(""), kMaxNodeidBytes);
  r.line = f.optional_integer("line");
  r.classname = bounded("classname", f.optional_string("classname").value_or(""), kMaxNodeidBytes);
  r.name = bounded("name", f.optional_string("name").value_or(""), kMaxNodeidBytes);
  const auto reruns = f.optional_integer("reruns").value_or(0);
  if (reruns < 0 || reruns > 1'000'000) throw Error(ErrorCode::kBadRequest, "field \"reruns\" must be 0..1000000");
  r.reruns = static_cast<int>(reruns);
  r.failure_reason = truncated_text(f.optional_string("failure_reason").value_or(""), kMaxMessageBytes);
  // a failed test's helper log lines, for its <system-out>.
  r.system_out = truncated_text(f.optional_string("system_out").value_or(""), kMaxSystemOut);
  // pytest's report.wasxfail as is (junitxml drops a leading "reason: "),
  // or true with the reason in `message`.
  if (const json* wasxfail = f.raw("wasxfail")) {
    if (wasxfail->is_string()) {
      std::string reason = wasxfail->get<std::string>();
      if (reason.rfind("reason: ", 0) == 0) reason.erase(0, 8);
      r.xfail_reason = truncated_text(std::move(reason), kMaxMessageBytes);
    } else if (wasxfail->is_boolean()) {
      if (wasxfail->get<bool>()) r.xfail_reason = r.message;
    } else if (!wasxfail->is_null()) {
      throw Error(ErrorCode::kBadRequest, "field \"wasxfail\" must be a string or a boolean");
    }
  }
  r.worker_id = a->worker_id();
  Supervised* s = find(a->run_id());
  if (s) r.attempt = std::max(1, s->job.attempt);
  a->test_finished(r.nodeid);
  std::string data = r.to_json_text();
  if (s) s->results.push_back(std::move(r));  // moved, not copied: this runs once per test
  events_.publish_text("test.finish", std::move(data), a->run_id(), call.peer.uid);
  return json();
}

json JobService::handle_crash_notice(Call& call) {
  auto* a = registered(call.peer, "crash.notice");
  const auto signo = call.fields.integer("signal");
  if (signo <= 0 || signo >= 65) throw Error(ErrorCode::kBadRequest, "field \"signal\" must be a signal number");
  a->crash_notice(static_cast<int>(signo));
  return json();
}

json JobService::handle_collection_finish(Call& call) {
  auto* a = activity_of(call.peer);
  if (!a) return json();
  Supervised* s = find(a->run_id());
  if (!s || s->job.state != JobState::kInProgress) return json();
  // Room for every result at once: growing by doubling moved each result
  // about once more and faulted in fresh pages each time (6-12% of lpd's
  // CPU per test). Every xdist worker collects the whole suite, so any
  // process's count will do. Only address space until used, and bounded
  // whatever the count claims.
  const auto count = call.fields.optional_integer("count").value_or(0);
  if (count > 0) s->results.reserve(static_cast<std::size_t>(std::min<std::int64_t>(count, 250'000)));
  if (a->worker_id() != "controller") return json();
  bool collect_only = false;
  for (const auto& arg : s->job.spec.argv) collect_only |= arg == "--collect-only" || arg == "--co";
  if (collect_only) set_state(*s, JobState::kCollected, "collected " + std::to_string(count) + " test(s)");
  return json();
}

json JobService::handle_worker_down(Call& call) {
  // An xdist controller saw one of its workers die and reaped it: it alone
  // knows the wait status, and tells us.
  auto* controller = registered(call.peer, "worker.down");
  const auto pid = static_cast<pid_t>(call.fields.integer("pid"));
  const auto returncode = call.fields.optional_integer("returncode");
  ExitStatus end;
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

json JobService::handle_worker_results(Call& call) {
  auto* controller = registered(call.peer, "worker.results");
  const std::string worker_id = bounded("worker_id", call.fields.string("worker_id"), kMaxWordBytes);
  const auto items = call.body.find("results");
  if (items == call.body.end() || !items->is_array())
    throw Error(ErrorCode::kBadRequest, "field \"results\" must be an array");
  if (items->size() > 1000) throw Error(ErrorCode::kTooLarge, "field \"results\" holds over 1000 results");
  Supervised* s = find(controller->run_id());
  if (!s) return json();  // not a supervised run: lpd keeps no results for it
  const int attempt = std::max(1, s->job.attempt);
  std::set<std::string, std::less<>> known;
  for (const auto& r : s->results)
    if (r.attempt == attempt) known.insert(r.nodeid);
  std::size_t added = 0;
  for (const auto& item : *items) {
    if (!item.is_object()) throw Error(ErrorCode::kBadRequest, "each of \"results\" must be an object");
    const protocol::Fields f(item);
    TestResult r;
    r.nodeid = bounded("nodeid", f.string("nodeid"), kMaxNodeidBytes);
    r.outcome = bounded("outcome", f.string("outcome"), kMaxWordBytes);
    if (!kOutcomes.count(r.outcome)) throw Error(ErrorCode::kBadRequest, "unknown outcome \"" + r.outcome + "\"");
    if (known.count(r.nodeid)) continue;  // lpd heard it from the worker itself
    r.phase = bounded("phase", f.optional_string("phase").value_or("call"), kMaxWordBytes);
    r.duration = f.optional_seconds("duration").value_or(0);
    r.message = truncated_text(f.optional_string("message").value_or(""), kMaxMessageBytes);
    r.longrepr = truncated_text(f.optional_string("longrepr").value_or(""), kMaxLongrepr);
    r.worker_id = worker_id;
    known.insert(r.nodeid);
    add_result(*s, std::move(r));
    ++added;
  }
  if (added > 0)
    spdlog::info("run {}: {} result(s) of dead worker {} came from its controller only", s->run_id, added, worker_id);
  return json();
}

json JobService::handle_worker_crashed(Call& call) {
  auto* controller = registered(call.peer, "worker.crashed");
  const std::string worker_id = bounded("worker_id", call.fields.string("worker_id"), kMaxWordBytes);
  const std::string nodeid = bounded("nodeid", call.fields.string("nodeid"), kMaxNodeidBytes);
  const auto pid = static_cast<pid_t>(call.fields.optional_integer("pid").value_or(0));
  const auto returncode = call.fields.optional_integer("returncode");
  const std::string run_id = controller->run_id();
  Supervised* s = find(run_id);
  if (s && s->job.stop_requested) return json();  // a stop's casualties are interrupted, not crashed
  // A plain `pytest -n N` (no job) counts too: lpd may have been restarted
  // while the worker ran, never hearing from it again; only the controller
  // saw it die.
  const Run* run = s ? nullptr : runs_.find(run_id);
  if (!s && !run) return json();
  const int attempt = s ? std::max(1, s->job.attempt) : 1;
  for (const Crash* c : crashes_.of_run(run_id))
    if (same_death(*c, attempt, pid) || (c->attempt == attempt && c->nodeid == nodeid && c->worker_id == worker_id))
      return json();  // lpd saw this worker die itself
  record_crash(s, crash_told_by_controller(run_id, worker_id, nodeid, pid, returncode, attempt,
                                           s ? s->owner : run->owner, wall_now()));
  return json();
}

json JobService::handle_traceback_attach(Call& call) {
  // From here on this connection carries faulthandler's raw text, not JSON.
  const pid_t pid = call.peer.pid;
  tracebacks_.erase(pid);
  // The process's stderr, when its shim passed it: the traceback goes to
  // the console too, as plain pytest would print it. Written as the peer
  // (the process the descriptor came from), never by lpd itself.
  std::shared_ptr<ConsoleEcho> echo = ConsoleEcho::make(
      io_, UniqueFd(call.sink->take_passed_fd()), Credentials{call.peer.uid, call.peer.gid, call.peer.groups});
  const bool switched = call.sink->switch_to_raw([this, pid, echo](std::string_view bytes) {
    if (echo) echo->write(bytes);
    std::string& text = tracebacks_[pid];
    if (text.size() < WorkerActivity::kMaxTraceback)
      text.append(bytes.substr(0, WorkerActivity::kMaxTraceback - text.size()));
    for (auto& [_, a] : activities_)
      if (a.pid() == pid) a.add_traceback(bytes);
    for (auto& p : pending_)
      if (p->activity.pid() == pid) p->activity.add_traceback(bytes);
  });
  if (!switched) throw Error(ErrorCode::kBadRequest, "this connection cannot carry a raw stream (traceback.attach is for "
                                                  "the Unix socket; HTTP and WebSocket clients cannot use it)");
  return {{"raw", true}, {"echo", echo != nullptr}};
}

void JobService::finalize(Pending& pending, const ExitStatus& end) {
  Supervised* s = find(pending.activity.run_id());
  settle_end(s, pending.activity, end);
  if (pending.watch) pending.watch->cancel();
  pending.activity = WorkerActivity("", "", 0, 0, 0);  // spent; erased by the caller
}

void JobService::finalize_pending_of(const std::string& run_id, const std::optional<ExitStatus>& controller_end) {
  for (auto& p : pending_) {
    if (p->activity.run_id() != run_id) continue;
    const bool controller = p->activity.worker_id() == "controller";
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
    raw->watch = ExitWatch::start(io_, raw->activity.pid(), [this, raw](const ExitStatus&) {
      finalize(*raw, ExitStatus{});
      std::erase_if(pending_, [](const auto& p) { return p->activity.run_id().empty(); });
    });
  }
  // A supervised run's processes are settled by worker.down or the attempt's end.
  pending_.push_back(std::move(pending));
}

}  // namespace lpd::daemon

// -- phases, failures outside tests, what was collected --------

namespace lpd::daemon {

namespace {

constexpr std::string_view kTestPhases[] = {"setup", "call", "teardown"};
constexpr std::string_view kSessionPhases[] = {"collection", "sessionstart", "sessionfinish", "exit"};

template <std::size_t N>
bool one_of(const std::string& word, const std::string_view (&words)[N]) {
  for (auto w : words)
    if (word == w) return true;
  return false;
}

/// How many nodeids one collection.items message may carry (the shim sends
/// chunks of 1000), and how many lpd keeps per run: a bound on memory.
constexpr std::size_t kMaxItemsPerMessage = 10'000;
constexpr std::size_t kMaxCollectedPerRun = 1'000'000;

}  // namespace

json JobService::handle_test_phase(Call& call) {
  auto* a = registered(call.peer, "test.phase");
  const std::string phase = bounded("phase", call.fields.string("phase"), kMaxWordBytes);
  const std::string nodeid = bounded("nodeid", call.fields.optional_string("nodeid").value_or(""), kMaxNodeidBytes);
  if (one_of(phase, kTestPhases)) {
    // A phase of a test other than the running one (a lost test.start) says nothing about it.
    if (a->current_test() && (nodeid.empty() || nodeid == *a->current_test())) a->phase(phase);
  } else if (one_of(phase, kSessionPhases)) {
    a->session_phase(phase);
  } else {
    throw Error(ErrorCode::kBadRequest, "field \"phase\" must be setup, call, teardown, collection, "
                                        "sessionstart, sessionfinish or exit, not \"" + phase + "\"");
  }
  return json();
}

json JobService::handle_session_error(Call& call) {
  auto* a = registered(call.peer, "session.error");
  const auto& f = call.fields;
  // Kept as a result whose phase is the session's: the JUnit report makes
  // it a testcase named for the phase, and the final exit code non-zero.
  TestResult r;
  r.phase = bounded("phase", f.string("phase"), kMaxWordBytes);
  if (!one_of(r.phase, kSessionPhases))
    throw Error(ErrorCode::kBadRequest,
                "field \"phase\" must be collection, sessionstart, sessionfinish or exit, not \"" + r.phase + "\"");
  r.nodeid = bounded("nodeid", f.optional_string("nodeid").value_or(""), kMaxNodeidBytes);
  r.outcome = "error";
  r.message = truncated_text(f.optional_string("message").value_or(""), kMaxMessageBytes);
  r.longrepr = truncated_text(f.optional_string("longrepr").value_or(""), kMaxLongrepr);
  r.worker_id = a->worker_id();
  a->session_phase(r.phase);
  Supervised* s = find(a->run_id());
  if (s) r.attempt = std::max(1, s->job.attempt);
  // Published as a test.finish (marked), so a restarted lpd reads it back
  // from the run's journal with the other results.
  json data = r.to_json();
  data["session_error"] = true;
  events_.publish("test.finish", data, a->run_id(), call.peer.uid);
  if (s) s->results.push_back(std::move(r));
  return json();
}

json JobService::handle_collection_items(Call& call) {
  auto* a = registered(call.peer, "collection.items");
  // One line is at most 1 MiB: that bounds each message; the run's total is bounded below.
  const std::vector<std::string> nodeids = call.fields.string_list("nodeids");
  if (nodeids.size() > kMaxItemsPerMessage)
    throw Error(ErrorCode::kTooLarge, "field \"nodeids\" holds over " + std::to_string(kMaxItemsPerMessage) + " items");
  // checked in place (bounded() takes a copy: a list may hold tens of
  // thousands of nodeids; older shims send one per xdist worker).
  for (const auto& nodeid : nodeids)
    if (nodeid.size() > kMaxNodeidBytes) bounded("nodeids", nodeid, kMaxNodeidBytes);
  Supervised* s = find(a->run_id());
  if (!s) return json();  // only a supervised run's report lists what never ran
  for (const auto& nodeid : nodeids) {
    if (s->collected.size() >= kMaxCollectedPerRun) break;
    if (s->collected_index.insert(nodeid).second) s->collected.push_back(nodeid);
  }
  // Room for a result per collected test (an xdist controller sends no
  // count, and its list may arrive after its workers' first results): at
  // least doubling, so chunks arriving among results move them rarely.
  if (s->results.capacity() < s->collected.size())
    s->results.reserve(std::min<std::size_t>(std::max(s->collected.size(), 2 * s->results.capacity()), 250'000));
  return json();
}

}  // namespace lpd::daemon
