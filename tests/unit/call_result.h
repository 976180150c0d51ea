#pragma once

#include <string>
#include <utility>

#include "daemon/reports/test_result.h"

/// A test's result in its call phase, as the shim reports one: `nodeid`,
/// `outcome` (pytest's word: "passed", "failed", "error", …), the run
/// `attempt` it belongs to and its failure `message`.
inline lpd::daemon::TestResult call_result(std::string nodeid, std::string outcome, int attempt = 1,
                                           std::string message = "") {
  lpd::daemon::TestResult r;
  r.nodeid = std::move(nodeid);
  r.outcome = std::move(outcome);
  r.phase = "call";
  r.attempt = attempt;
  r.message = std::move(message);
  return r;
}
