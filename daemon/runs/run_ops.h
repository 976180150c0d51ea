#pragma once

#include "daemon/core/operation.h"

namespace lpd::daemon {

class RunService;

// The run.register / run.end / run.list operations: each decodes its
// fields, calls RunService's typed API and encodes the reply. Who may join
// an existing run is the operation table's gate (operation_table.cpp).

/// run.register {run_id?, worker_id?, hostname?, cwd?, argv?}:
/// {"run_id", "worker_id", "new"} (RunService::join).
json handle_run_register(RunService& runs, Call& call);
/// run.end: {"ended": whether this connection had a part in a run}.
json handle_run_end(RunService& runs, Call& call);
/// run.list {all?, limit?, after?}: {"runs", "next"}; each run as the
/// caller may see it (Call::view), `next` the cursor of the next page
/// ({"created_at", "run_id"}) or null.
json handle_run_list(RunService& runs, Call& call);

/// The run the call's run_id names, when it exists (joining it, pausing in
/// it, mirroring it acts on it); nullopt when there is none or no run_id:
/// the call creates it (run.register) or its handler refuses it.
std::optional<Owned> existing_run(RunService& runs, const Call& call);

}  // namespace lpd::daemon
