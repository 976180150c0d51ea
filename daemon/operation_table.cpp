#include "daemon/operation_table.h"

#include "daemon/daemon.h"
#include "daemon/ops/daemon_ops.h"
#include "daemon/ops/event_ops.h"
#include "daemon/ops/process_ops.h"

namespace lpd::daemon {
namespace {

/// Binds a family handler `json f(Daemon&, Call&)` to this daemon.
template <json (*F)(Daemon&, Call&)>
Handler bind(Daemon& daemon) {
  return [&daemon](Call& call) { return F(daemon, call); };
}

}  // namespace

std::vector<Operation> operation_table(Daemon& d) {
  return {
      {"hello", "Handshake: protocol version in, daemon version and peer credentials out", bind<handle_hello>(d), true},
      {"ping", "Round-trip check", bind<handle_ping>(d)},
      {"ring.attach", "Read this connection's one-way messages also from the memfd passed with this request",
       bind<handle_ring_attach>(d)},
      {"status", "Daemon version, pid, uptime, socket, state directory, connection counts", bind<handle_status>(d)},
      {"ops", "List the operations this daemon serves", bind<handle_operations>(d)},
      {"events.subscribe", "Push every matching event from now on (run_id, types, replay)",
       bind<handle_events_subscribe>(d)},
      {"events.list", "Events kept in memory, filtered by run_id and types", bind<handle_events_list>(d)},
      // -- pauses and runs (issue 3) --
      {"run.register", "Join a run (or start one): run_id?, worker_id?, argv, cwd, hostname",
       [&d](Call& c) { return d.runs().handle_register(c); }},
      {"run.end", "Say this connection's part of the run ended cleanly", [&d](Call& c) { return d.runs().handle_end(c); }},
      {"run.list", "Runs (active; all with all=true)", [&d](Call& c) { return d.runs().handle_list(c); }},
      {"pause.request", "Block until resumed, timed out or stale: run_id, kind, nodeid, task, timeout, pause_id?",
       [&d](Call& c) { return d.pauses().handle_request(c); }},
      {"pause.resume", "Resume a pending pause: pause_id (or unique prefix), result/reason or failure_reason",
       [&d](Call& c) { return d.pauses().handle_resume(c); }},
      {"pause.list", "Pauses (pending; all with all=true), optionally of one run_id",
       [&d](Call& c) { return d.pauses().handle_list(c); }},
      {"pause.watch", "Wait for the next pending pause of run_id (timeout?); fails if the run ends first",
       [&d](Call& c) { return d.pauses().handle_watch(c); }},
      // -- supervised test runs and crash attribution (issue 5) --
      {"run.start", "Run a command under supervision (lpctl run): argv, cwd, env, name, retry_crashed, junit, "
                    "crash_log, pause_on_failure",
       [&d](Call& c) { return d.jobs().handle_start(c); }},
      {"run.attach", "Stream a supervised run's output (run.output pushes) until run.done: run_id, offset?",
       [&d](Call& c) { return d.jobs().handle_attach(c); }},
      {"run.stop", "Stop a supervised run: SIGINT to its process group, SIGKILL after grace",
       [&d](Call& c) { return d.jobs().handle_stop(c); }},
      {"run.info", "A supervised run's job: state, attempts, returncode, log", [&d](Call& c) { return d.jobs().handle_info(c); }},
      {"run.report", "JUnit XML of a supervised run, merged across workers and retries",
       [&d](Call& c) { return d.jobs().handle_report(c); }},
      {"crash.list", "Crash records, optionally of one run_id", [&d](Call& c) { return d.jobs().handle_crashes(c); }},
      {"test.start", "Notification: this process starts nodeid (before its setup)",
       [&d](Call& c) { return d.jobs().handle_test_start(c); }},
      {"test.finish", "Notification: nodeid finished (after teardown): outcome, phase, duration, message",
       [&d](Call& c) { return d.jobs().handle_test_finish(c); }},
      {"crash.notice", "Notification from a native crash handler: signal, nodeid",
       [&d](Call& c) { return d.jobs().handle_crash_notice(c); }},
      {"worker.down", "Notification from an xdist controller: a worker died: worker_id, pid, returncode",
       [&d](Call& c) { return d.jobs().handle_worker_down(c); }},
      {"collection.finish", "Notification from a pytest controller: collection done: count",
       [&d](Call& c) { return d.jobs().handle_collection_finish(c); }},
      {"traceback.attach", "Turn this connection into a raw stream of this process's fatal-error traceback",
       [&d](Call& c) { return d.jobs().handle_traceback_attach(c); }},
      // -- supervised helper processes (issue 4) --
      {"proc.ensure",
       "Start NAME unless it runs, answer when its log matches pattern: name, pattern, argv, cwd, env, timeout, "
       "max_read_lines, restart, keep_on_timeout",
       bind<handle_proc_ensure>(d)},
      {"proc.list", "Supervised processes (running; all with all=true)", bind<handle_proc_list>(d)},
      {"proc.info", "One supervised process: name", bind<handle_proc_info>(d)},
      {"proc.kill", "Signal NAME's process group, SIGKILL after grace, answer when gone: name, signal?, grace?",
       bind<handle_proc_kill>(d)},
      {"proc.kill_all", "proc.kill for every process the caller may act on: signal?, grace?",
       bind<handle_proc_kill_all>(d)},
      {"proc.logs", "Push NAME's log as proc.log pieces then proc.log_end: name, lines?, follow?",
       bind<handle_proc_logs>(d)},
  };
}

}  // namespace lpd::daemon
