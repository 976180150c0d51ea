#pragma once

#include "daemon/core/operation.h"

namespace lpd::daemon {

class JobService;

// The read and stop operations of supervised runs: each decodes its
// fields and calls JobService's typed API. Who may read or stop the run is
// the operation table's gate (supervised_run).

/// run.stop {run_id, grace?, signal?}: JobService::stop.
json handle_run_stop(JobService& jobs, Call& call);
/// run.report {run_id, offset?, limit?}: JobService::report.
json handle_run_report(JobService& jobs, Call& call);
/// run.info {run_id}: JobService::info.
json handle_run_info(JobService& jobs, Call& call);

}  // namespace lpd::daemon
