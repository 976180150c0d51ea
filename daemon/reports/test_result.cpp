#include "daemon/reports/test_result.h"

namespace lpd::daemon {

nlohmann::json TestResult::to_json() const {
  return {{"nodeid", nodeid},   {"outcome", outcome},     {"phase", phase},  {"duration", duration},
          {"message", message}, {"worker_id", worker_id}, {"attempt", attempt}};
}

TestResult TestResult::from_json(const nlohmann::json& j) {
  TestResult r;
  r.nodeid = j.value("nodeid", "");
  r.outcome = j.value("outcome", "");
  r.phase = j.value("phase", "");
  r.duration = j.value("duration", 0.0);
  r.message = j.value("message", "");
  r.worker_id = j.value("worker_id", "");
  r.attempt = j.value("attempt", 1);
  return r;
}

}  // namespace lpd::daemon
