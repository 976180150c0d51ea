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
