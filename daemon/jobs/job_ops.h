#pragma once

#include "daemon/core/operation.h"
#include "daemon/jobs/job.h"

namespace lpd::daemon {

class JobService;

// The operations of supervised runs: each decodes its fields and calls
// JobService's typed API. Who may read, follow or stop the run is the
// operation table's gate (supervised_run). The shims' messages about their
// tests are shim_ops.h's.

/// run.start {argv, cwd?, env?, name?, retry_crashed?, rerun_crashed?,
/// fail_on_flaky?, terminal?, separate_stderr?, runner?, junit?, crash_log?,
/// pause_on_failure?}: JobService::start with job_spec_of's spec.
json handle_run_start(JobService& jobs, Call& call);
/// run.attach {run_id, offset?, stderr_offset?}: JobService::attach, its
/// reply deferred, then run.output ... run.done pushed.
json handle_run_attach(JobService& jobs, Call& call);
/// run.stop {run_id, grace?, signal?}: JobService::stop.
json handle_run_stop(JobService& jobs, Call& call);
/// run.report {run_id, offset?, limit?}: JobService::report.
json handle_run_report(JobService& jobs, Call& call);
/// run.info {run_id}: JobService::info.
json handle_run_info(JobService& jobs, Call& call);

/// What run.start asks for, decoded and checked with no I/O: argv names a
/// command; cwd (default "/") and the report paths (junit, crash_log) are
/// absolute; name is a safe id of at most 41 characters (the run id has at
/// most 64); retry_crashed and rerun_crashed are 0..100 and need a runner
/// lpd can leave tests out of (named, or recognised from argv: JobSpec's
/// runner); terminal is {"columns", "rows"}, each 1..10000, and merges
/// stderr into stdout. `body` is the message (terminal is an object).
/// run_as is the service's. Throws bad_request with the wording
/// protocol/README.md documents.
JobSpec job_spec_of(const protocol::Fields& f, const json& body);

}  // namespace lpd::daemon
