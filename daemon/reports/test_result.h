#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace lpd::daemon {

/// TestResult is one test.finish message: the whole outcome of one test
/// (setup, call and teardown) in one attempt of a run.
struct TestResult {
  std::string nodeid;
  std::string outcome;  // passed, failed, skipped, error (setup/teardown failed)
  std::string phase;    // the phase that decided the outcome
  double duration = 0;
  std::string message;  // short failure text
  std::string worker_id;
  int attempt = 1;

  nlohmann::json to_json() const;
  static TestResult from_json(const nlohmann::json& j);
};

}  // namespace lpd::daemon
