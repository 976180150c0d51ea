#pragma once

#include <string>
#include <vector>

#include "daemon/reports/junit_report.h"
#include "daemon/jobs/job.h"

namespace lpd::daemon {

/// The JunitInput of a supervised run (JobService's two JUnit call sites:
/// the --junit file at the job's end, and run.report): its suite name
/// (`lpctl run --name` when given, else the runner's own, suite_name_for),
/// the runner, wall-clock start and end (`now` while it still runs), and
/// why collected tests without an outcome never ran. `collected` is left
/// out for a --collect-only run: it runs no test on purpose.
JunitInput junit_input_of(const Job& job, const std::vector<TestResult>& results, const std::vector<Crash>& crashes,
                          const std::vector<std::string>& collected, const std::string& hostname, double now);

/// This host's name (gethostname), as pytest's platform.node() gives it;
/// "" when it cannot be read.
std::string host_name();

}  // namespace lpd::daemon
