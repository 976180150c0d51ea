#pragma once

#include <string>
#include <vector>

#include "daemon/crashes/crash.h"
#include "daemon/reports/test_result.h"

namespace lpd::daemon {

/// Builds a JUnit XML document (the dialect pytest's --junitxml writes, read
/// by Jenkins and GitLab) from live test results and crash records, merged
/// across xdist workers and retries: the latest attempt of each test wins,
/// and every crash is an <error> carrying the signal and the traceback, so
/// the report is complete even when pytest itself died.
std::string junit_report(const std::string& suite_name, const std::vector<TestResult>& results,
                         const std::vector<Crash>& crashes, const std::string& hostname, double timestamp);

/// Escapes text for XML, dropping characters XML 1.0 cannot carry.
std::string xml_escape(const std::string& text);

}  // namespace lpd::daemon
