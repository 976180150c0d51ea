#pragma once

#include "daemon/core/operation.h"

namespace lpd::daemon {

class JobService;

// The shims' messages about their tests (one-way, on the connection that
// said run.register): each decodes its fields (shim_fields.h) and calls
// JobService's typed API. Each replies nothing; errors are the decoder's
// and the service's (bad_request before run.register).

/// test.start {nodeid, phase?}: JobService::test_started.
json handle_test_start(JobService& jobs, Call& call);
/// test.finish {nodeid, outcome?, ...}: JobService::test_finished.
json handle_test_finish(JobService& jobs, Call& call);
/// crash.notice {signal}: JobService::crash_noticed.
json handle_crash_notice(JobService& jobs, Call& call);
/// worker.down {pid, returncode?}: JobService::worker_down.
json handle_worker_down(JobService& jobs, Call& call);
/// worker.results {worker_id, results}: JobService::worker_results.
json handle_worker_results(JobService& jobs, Call& call);
/// worker.crashed {worker_id, nodeid, pid?, returncode?}: JobService::worker_crashed.
json handle_worker_crashed(JobService& jobs, Call& call);
/// collection.finish {count?}: JobService::collection_finished.
json handle_collection_finish(JobService& jobs, Call& call);
/// traceback.attach {} (with the process's stderr passed, maybe):
/// JobService::attach_traceback; replies {"raw": true, "echo"}.
json handle_traceback_attach(JobService& jobs, Call& call);
/// test.phase {phase, nodeid?}: JobService::phase_changed.
json handle_test_phase(JobService& jobs, Call& call);
/// session.error {phase, nodeid?, message?, longrepr?}: JobService::session_error.
json handle_session_error(JobService& jobs, Call& call);
/// collection.items {nodeids}: JobService::collected.
json handle_collection_items(JobService& jobs, Call& call);

}  // namespace lpd::daemon
