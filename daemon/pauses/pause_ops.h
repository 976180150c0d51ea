#pragma once

#include "daemon/core/operation.h"

namespace lpd::daemon {

class PauseService;

// The pause.* operations: each decodes its fields, calls PauseService's
// typed API and encodes the reply. Who may act on the run or pause a call
// names is the operation table's gate (operation_table.cpp).

/// pause.request {run_id, pause_id?, kind?, timeout?, nodeid?, task?,
/// original_failure?, worker_id?, hostname?, cwd?}: deferred until the
/// pause ends, then its outcome (PauseService::request).
json handle_pause_request(PauseService& pauses, Call& call);
/// pause.resume {pause_id (or a unique prefix), result?, reason?,
/// failure_reason?}: {"pause": the resumed pause}. bad_request when result
/// is neither true, false nor null.
json handle_pause_resume(PauseService& pauses, Call& call);
/// pause.list {all?, run_id?, limit?, after?}: {"pauses", "next"}; each
/// pause as the caller may see it (Call::view), `next` the cursor of the
/// next page ({"created_at", "pause_id"}) or null.
json handle_pause_list(PauseService& pauses, Call& call);
/// pause.watch {run_id, timeout?}: {"pause": the oldest pending one}, at
/// once or when one comes (deferred); timeout / conflict otherwise.
json handle_pause_watch(PauseService& pauses, Call& call);
/// pause.mirror {run_id, pause_dir}: pytest-live-pause's pause directory,
/// made with the caller's identity (PauseService::mirror).
json handle_pause_mirror(PauseService& pauses, Call& call);

/// The pause the call's pause_id (or a unique prefix of it) names, for the
/// gate of pause.resume. Throws not_found, or bad_request (ambiguous prefix).
std::optional<Owned> pause_named(PauseService& pauses, const Call& call);

}  // namespace lpd::daemon
