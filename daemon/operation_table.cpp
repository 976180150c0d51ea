#include "daemon/operation_table.h"

#include "daemon/daemon.h"
#include "daemon/ops/daemon_ops.h"
#include "daemon/ops/event_ops.h"

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
      // -- supervised helper processes (issue 4) --
  };
}

}  // namespace lpd::daemon
