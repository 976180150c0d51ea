#include "daemon/operation_table.h"

#include "daemon/daemon.h"
#include "daemon/crashes/crash_ops.h"
#include "daemon/daemon_ops.h"
#include "daemon/history/event_ops.h"
#include "daemon/history/history_ops.h"
#include "daemon/http/http_token_ops.h"
#include "daemon/jobs/job_ops.h"
#include "daemon/jobs/shim_ops.h"
#include "daemon/pauses/pause_ops.h"
#include "daemon/processes/process_ops.h"
#include "daemon/runs/run_ops.h"

namespace lpd::daemon {
namespace {

using protocol::Error;
using protocol::ErrorCode;

/// Binds a family handler `json f(Daemon&, Call&)` to this daemon.
template <json (*F)(Daemon&, Call&)>
Handler bind(Daemon& daemon) {
  return [&daemon](Call& call) { return F(daemon, call); };
}

/// Binds a family handler `json f(Service&, Call&)` to the service the
/// daemon's accessor `Get` (&Daemon::processes, &Daemon::pauses, ...) gives.
template <auto Get, auto F>
Handler on(Daemon& daemon) {
  return [&daemon](Call& call) { return F((daemon.*Get)(), call); };
}

/// Binds a family's owner lookup `std::optional<Owned> f(Service&, const
/// Call&)` to the service `Get` gives: the table's owner column.
template <auto Get, auto F>
OwnerOf owner(Daemon& daemon) {
  return [&daemon](const Call& call) { return F((daemon.*Get)(), call); };
}

/// The supervised run the call's run_id names (run.attach, run.info, ...).
OwnerOf supervised_run(Daemon& d) {
  return [&d](const Call& call) -> std::optional<Owned> {
    const std::string run_id = call.fields.string("run_id");
    return Owned{"run " + run_id, d.jobs().owner_of(run_id)};
  };
}

/// What of_a_kept_run() is in front of.
enum class RunFilter {
  kEvents,        // events.list
  kCrashes,       // crash.list: a run only crash records name (an older lpd's journal, its directory gone) counts
  kSubscription,  // events.subscribe: asking no history (no replay, no since), it may wait for a run not started yet
};

/// `handler`, once the call's run_id (when it has one) names a run lpd
/// keeps: a list or stream of a removed or made-up run is not_found, never
/// an empty answer that reads as a run without events or crashes.
Handler of_a_kept_run(Daemon& d, RunFilter filter, Handler handler) {
  return [&d, handler = std::move(handler), filter](Call& call) {
    const auto run_id = call.fields.optional_string("run_id");
    if (!run_id || run_id->empty() || d.runs().registry().find(*run_id)) return handler(call);
    if (filter == RunFilter::kCrashes && !d.crashes().of_run(*run_id).empty()) return handler(call);
    const bool subscription = filter == RunFilter::kSubscription;
    if (subscription && !call.fields.optional_boolean("replay").value_or(false) && !call.fields.optional_integer("since"))
      return handler(call);
    throw Error(ErrorCode::kNotFound,
                "no run " + *run_id + ": lpd keeps none by that id (never made, or removed by retention or prune)" +
                    (subscription ? "; to wait for a run not started yet, subscribe without replay or since" : ""));
  };
}

}  // namespace

OperationTable operation_table(Daemon& d) {
  using G = Gate;
  std::vector<Operation> ops = {
      {"hello", "Handshake: protocol version in, daemon version and peer credentials out", G::kOpen,
       bind<handle_hello>(d), nullptr, true},
      {"ping", "Round-trip check", G::kOpen, bind<handle_ping>(d)},
      {"ring.attach", "Read this connection's one-way messages also from the memfd passed with this request",
       G::kOwn, bind<handle_ring_attach>(d)},
      {"status", "Daemon version, pid, uptime, socket, state directory, connection counts", G::kOpen,
       bind<handle_status>(d)},
      {"ops", "List the operations this daemon serves", G::kOpen, bind<handle_operations>(d)},
      {"events.subscribe", "Push every matching event from now on (run_id, types, replay, since: every kept event "
                           "after that seq first)",
       G::kList, of_a_kept_run(d, RunFilter::kSubscription, [&d](Call& c) {
         return handle_events_subscribe(d.events(), d.history(), d.io(), c);
       })},
      {"events.list", "One page of the kept events after since (run_id, types, limit); replies events, next (the "
                      "since of the next page, null at the end) and last_seq",
       G::kList, of_a_kept_run(d, RunFilter::kEvents, [&d](Call& c) { return handle_events_list(d.events(), d.history(), c); })},
      // -- history and retention --
      {"prune", "Remove ended runs past keep_runs / keep_days (default: lpd's limits) among those the caller may "
                "act on; dry_run lists them only (skip: the runs a dry run's earlier pages listed)",
       G::kOwn, on<&Daemon::history, handle_prune>(d)},
      // -- pauses and runs --
      {"run.register", "Join a run (or start one): run_id?, worker_id?, argv, cwd, hostname", G::kAct,
       on<&Daemon::runs, handle_run_register>(d), owner<&Daemon::runs, existing_run>(d)},
      {"run.end", "Say this connection's part of the run ended cleanly", G::kOwn,
       on<&Daemon::runs, handle_run_end>(d)},
      {"run.list", "One page of runs (active; all with all=true), oldest first: after (a previous reply's next), "
                   "limit; replies runs and next (null at the end)",
       G::kList, on<&Daemon::runs, handle_run_list>(d)},
      {"pause.request", "Block until resumed, timed out or stale: run_id, kind, nodeid, task, timeout, pause_id?",
       G::kAct, on<&Daemon::pauses, handle_pause_request>(d), owner<&Daemon::runs, existing_run>(d)},
      {"pause.resume", "Resume a pending pause: pause_id (or unique prefix), result/reason or failure_reason",
       G::kAct, on<&Daemon::pauses, handle_pause_resume>(d), owner<&Daemon::pauses, pause_named>(d)},
      {"pause.list", "Pauses (pending; all with all=true), optionally of one run_id; a page at a time (limit, after)", G::kList,
       on<&Daemon::pauses, handle_pause_list>(d)},
      {"pause.watch", "Wait for the next pending pause of run_id (timeout?); fails if the run ends first", G::kList,
       on<&Daemon::pauses, handle_pause_watch>(d)},
      // pytest-live-pause's pause directory
      {"pause.mirror", "Mirror run_id's run, events and pauses into pause_dir (pytest-live-pause's layout) and apply "
                       "the <pause_id>.resume.json files written to its commands/",
       G::kAct, on<&Daemon::pauses, handle_pause_mirror>(d), owner<&Daemon::runs, existing_run>(d)},
      // -- supervised test runs and crash attribution --
      {"run.start", "Run a command under supervision (lpctl run): argv, cwd, env, name, retry_crashed, "
                    "rerun_crashed, fail_on_flaky, runner, junit, crash_log, pause_on_failure",
       G::kOwn, on<&Daemon::jobs, handle_run_start>(d)},
      {"run.attach", "Stream a supervised run's output (run.output pushes) until run.done: run_id, offset?", G::kRead,
       on<&Daemon::jobs, handle_run_attach>(d), supervised_run(d)},
      {"run.stop", "Stop a supervised run: SIGINT to its process group, SIGKILL after grace", G::kAct,
       on<&Daemon::jobs, handle_run_stop>(d), supervised_run(d)},
      {"run.info", "A supervised run's job: state, attempts, returncode, log", G::kRead,
       on<&Daemon::jobs, handle_run_info>(d), supervised_run(d)},
      {"run.report", "JUnit XML of a supervised run, merged across workers and retries", G::kRead,
       on<&Daemon::jobs, handle_run_report>(d), supervised_run(d)},
      {"crash.list", "Crash records, oldest first, one page: run_id, after (a crash_id), limit (default 100, "
                     "at most 1000); replies crashes and next (the cursor, or null at the end)", G::kList,
       of_a_kept_run(d, RunFilter::kCrashes, on<&Daemon::crashes, handle_crash_list>(d))},
      {"test.start", "Notification: this process starts nodeid (before its setup)", G::kOwn,
       on<&Daemon::jobs, handle_test_start>(d), nullptr, false, /*flat_fields=*/true, /*test_records=*/true},
      {"test.finish", "Notification: nodeid finished (after teardown): outcome, phase, duration, message", G::kOwn,
       on<&Daemon::jobs, handle_test_finish>(d), nullptr, false, /*flat_fields=*/true, /*test_records=*/true},
      {"crash.notice", "Notification from a native crash handler: signal, nodeid", G::kOwn,
       on<&Daemon::jobs, handle_crash_notice>(d)},
      {"worker.down", "Notification from an xdist controller: a worker died: worker_id, pid, returncode", G::kOwn,
       on<&Daemon::jobs, handle_worker_down>(d)},
      {"worker.results", "Notification from an xdist controller: what a dead worker reported: worker_id, results",
       G::kOwn, on<&Daemon::jobs, handle_worker_results>(d)},
      {"worker.crashed", "Notification from an xdist controller: the test a dead worker was running: worker_id, pid, "
       "returncode, nodeid", G::kOwn, on<&Daemon::jobs, handle_worker_crashed>(d)},
      {"collection.finish", "Notification from a pytest controller: collection done: count", G::kOwn,
       on<&Daemon::jobs, handle_collection_finish>(d)},
      {"traceback.attach", "Turn this connection into a raw stream of this process's fatal-error traceback "
                           "(echoed to the stderr descriptor passed with it, if any)",
       G::kOwn, on<&Daemon::jobs, handle_traceback_attach>(d)},
      // -- what happened outside tests, and where a test was --
      {"test.phase", "Notification: the running test entered phase (setup, call, teardown), or the session did "
                     "(collection, sessionstart, sessionfinish, exit): nodeid?, phase",
       G::kOwn, on<&Daemon::jobs, handle_test_phase>(d), nullptr, false, /*flat_fields=*/true},
      {"session.error", "Notification: a failure or crash outside any test: phase, nodeid, message, longrepr", G::kOwn,
       on<&Daemon::jobs, handle_session_error>(d)},
      {"collection.items", "Notification: nodeids this process collected (chunks of at most 1000)", G::kOwn,
       on<&Daemon::jobs, handle_collection_items>(d), nullptr, false, /*flat_fields=*/true},
      // -- supervised helper processes --
      {"proc.ensure",
       "Start NAME unless it runs, answer when its log matches pattern: name, scope?, pattern?, argv, cwd, env, "
       "timeout, max_read_lines, restart, keep_on_timeout, lease?, linger?, keep_logs?",
       G::kAct, on<&Daemon::processes, handle_proc_ensure>(d), owner<&Daemon::processes, existing_process_named>(d)},
      {"proc.list", "Supervised processes (running; all with all=true), a page at a time: scope?, owner?, limit?, after?", G::kList, on<&Daemon::processes, handle_proc_list>(d)},
      {"proc.info", "One supervised process: name", G::kRead, on<&Daemon::processes, handle_proc_info>(d),
       owner<&Daemon::processes, process_named>(d)},
      {"proc.kill", "Signal NAME's process group, SIGKILL after grace, answer when gone: name, signal?, grace?",
       G::kAct, on<&Daemon::processes, handle_proc_kill>(d), owner<&Daemon::processes, process_named>(d)},
      {"proc.kill_all", "proc.kill for each of the caller's (or owner's) running helpers: scope?, owner?, force?, signal?, grace?", G::kOwn,
       on<&Daemon::processes, handle_proc_kill_all>(d)},
      {"proc.logs", "Push NAME's log as proc.log pieces then proc.log_end: name, lines?, follow?", G::kRead,
       on<&Daemon::processes, handle_proc_logs>(d), owner<&Daemon::processes, process_named>(d)},
      // -- leases; every proc.* op naming a helper also takes scope?/full_name?/owner? --
      {"proc.release", "This connection stops holding NAME (a lease from proc.ensure): name, scope?", G::kAct,
       on<&Daemon::processes, handle_proc_release>(d), owner<&Daemon::processes, process_named>(d)},
      // -- each user's own HTTP token (lpctl dashboard) --
      {"http.token", "The caller's own HTTP token (made on first request, kept across restarts) and the URL to "
                     "open: rotate? replaces it; unavailable without lpd start --http",
       G::kOwn, [&d](Call& c) { return handle_http_token(d.http_server(), d.http_address(), c); }},
  };
  return {std::move(ops), d.access()};
}

}  // namespace lpd::daemon
