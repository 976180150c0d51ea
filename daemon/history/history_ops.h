#pragma once

#include "daemon/core/operation.h"

namespace lpd::daemon {

class History;

/// prune {dry_run?, keep_runs?, keep_days?} (lpctl prune): removes the
/// ended runs those limits (default: lpd's) select among the runs the
/// caller may act on (History::prune); replies {"runs": each run's report
/// line as the caller may see it, "dry_run", "more", "keep_runs",
/// "keep_days"}. bad_request for a negative keep_runs.
json handle_prune(History& history, Call& call);

}  // namespace lpd::daemon
