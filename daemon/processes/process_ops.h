#pragma once

#include "daemon/core/operation.h"

namespace lpd::daemon {

class ProcessService;

/// Supervised helper processes (lpctl ensure/ps/logs/kill/kill-all).
/// proc.ensure answers once the helper is ready or has failed (deferred);
/// all callers ensuring one NAME at the same time share one start.
json handle_proc_ensure(ProcessService& processes, Call& call);
json handle_proc_list(ProcessService& processes, Call& call);
json handle_proc_info(ProcessService& processes, Call& call);
/// Answers once the whole process group is gone; a holder of a leased
/// helper that others hold only lets go ({"released": true, "holders": N}).
json handle_proc_kill(ProcessService& processes, Call& call);
/// The caller's connection stops holding the helper (see Leases).
json handle_proc_release(ProcessService& processes, Call& call);
json handle_proc_kill_all(ProcessService& processes, Call& call);
/// Replies with the range, then pushes proc.log pieces and one proc.log_end.
json handle_proc_logs(ProcessService& processes, Call& call);

// Owner lookups for the dispatcher's gates (see Operation::owner_of).
/// The process the call's "name" (+ "scope", "owner") or "full_name"
/// names (ProcessRegistry::resolve). Throws bad_request (not a valid
/// name or scope), not_found or conflict.
std::optional<Owned> process_named(ProcessService& processes, const Call& call);
/// proc.ensure: the process of that name when one exists; nullopt when the
/// call would start a new one (the caller becomes its owner).
std::optional<Owned> existing_process_named(ProcessService& processes, const Call& call);

}  // namespace lpd::daemon
