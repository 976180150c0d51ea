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
/// `results`, `crashes` and `collected` are moved into the input, not
/// copied (a 50,000-test run's results are tens of MB), except `collected`
/// when it is left out (then untouched); lend_back() returns them.
JunitInput junit_input_of(const Job& job, std::vector<TestResult>&& results, std::vector<Crash>&& crashes,
                          std::vector<std::string>&& collected, const std::string& hostname, double now);

/// Moves what junit_input_of() took back into `results`, `crashes` and
/// `collected` (the last only when `in` holds some: a --collect-only run's
/// were never taken).
void lend_back(JunitInput& in, std::vector<TestResult>& results, std::vector<Crash>& crashes,
               std::vector<std::string>& collected);

/// This host's name (gethostname), as pytest's platform.node() gives it;
/// "" when it cannot be read.
std::string host_name();

}  // namespace lpd::daemon
