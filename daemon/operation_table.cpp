#include "daemon/operation_table.h"

#include "daemon/daemon.h"
#include "daemon/ops/daemon_ops.h"

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
  };
}

}  // namespace lpd::daemon
