#pragma once

#include "daemon/core/operation.h"

namespace lpd::daemon {

class Daemon;

/// Connection-level operations: the handshake and daemon introspection.
json handle_hello(Daemon& daemon, Call& call);
json handle_ping(Daemon& daemon, Call& call);
json handle_status(Daemon& daemon, Call& call);
json handle_operations(Daemon& daemon, Call& call);
/// Takes the event ring the peer passed with this request (SCM_RIGHTS).
json handle_ring_attach(Daemon& daemon, Call& call);

}  // namespace lpd::daemon
