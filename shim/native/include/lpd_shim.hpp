// lpd_shim.hpp: a thin C++17 layer over the C ABI in lpd_shim.h (RAII,
// std::string, std::optional). Header-only: it adds no symbols, so the ABI
// a binary depends on stays the C one.
#pragma once

#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "lpd_shim.h"

namespace lpd::shim {

/// Owns a string the library handed out.
using OwnedString = std::unique_ptr<char, decltype(&lpd_shim_string_free)>;

inline std::string take_string(char* s) {
  OwnedString owned(s, &lpd_shim_string_free);
  return owned ? std::string(owned.get()) : std::string();
}

/// What a checkpoint returns: the decision, the resumer's reason and how the
/// pause ended (resumed, timed out, stale, mock, not paused).
struct Decision {
  std::optional<bool> result;
  std::string reason;
  lpd_shim_outcome outcome = LPD_SHIM_OUTCOME_NOT_PAUSED;
  lpd_shim_status status = LPD_SHIM_DISABLED;
};

inline bool connect_from_env() { return lpd_shim_connect_from_env() == LPD_SHIM_OK; }
inline bool connect(const std::string& socket_path, const std::string& run_id = {}) {
  return lpd_shim_connect(socket_path.c_str(), run_id.c_str()) == LPD_SHIM_OK;
}
inline bool is_connected() { return lpd_shim_is_connected() != 0; }
inline std::string run_id() {
  char buf[128];
  const std::size_t n = lpd_shim_run_id(buf, sizeof(buf));
  return n < sizeof(buf) ? std::string(buf, n) : std::string(buf);
}
inline std::string last_error() { return lpd_shim_last_error(); }

inline void test_started(const std::string& nodeid) { lpd_shim_test_started(nodeid.c_str()); }
inline void test_finished(const std::string& nodeid, lpd_shim_test_outcome outcome, double duration_seconds,
                          const std::string& message = {}) {
  lpd_shim_test_finished(nodeid.c_str(), outcome, duration_seconds, message.c_str());
}

/// Pauses the current test until `lpctl resume <id> --result true|false|none`.
inline Decision checkpoint(const std::string& task = {}, double timeout_seconds = 300) {
  int result = LPD_SHIM_RESULT_NONE;
  int outcome = LPD_SHIM_OUTCOME_NOT_PAUSED;
  char* reason = nullptr;
  Decision d;
  d.status = static_cast<lpd_shim_status>(lpd_shim_checkpoint(task.c_str(), timeout_seconds, &result, &reason, &outcome));
  d.reason = take_string(reason);
  d.outcome = static_cast<lpd_shim_outcome>(outcome);
  if (result != LPD_SHIM_RESULT_NONE) d.result = result == LPD_SHIM_RESULT_TRUE;
  return d;
}

/// A new pause id (16 hex digits) for pause_on_failure: print it, then pause.
inline std::string new_pause_id() {
  char buf[32];
  const std::size_t n = lpd_shim_new_pause_id(buf, sizeof(buf));
  return std::string(buf, n < sizeof(buf) ? n : 0);
}

/// Pauses a failed test (under pause_id when given, else a new id); returns
/// the external failure reason, if one was given.
inline std::optional<std::string> pause_on_failure(const std::string& nodeid, const std::string& failure_text,
                                                   double timeout_seconds = 300, const std::string& pause_id = {}) {
  char* reason = nullptr;
  lpd_shim_pause_on_failure_as(pause_id.empty() ? nullptr : pause_id.c_str(), nodeid.empty() ? nullptr : nodeid.c_str(),
                               failure_text.c_str(), timeout_seconds, &reason, nullptr);
  if (reason == nullptr) return std::nullopt;
  return take_string(reason);
}

inline bool install_crash_handler() { return lpd_shim_install_crash_handler() == LPD_SHIM_OK; }

/// What the test-framework adapters read from the environment:
/// LPD_PAUSE_ON_FAILURE (set, not "0": pause failed tests) and
/// LPD_PAUSE_TIMEOUT (seconds a failure pause waits, default 300).
struct AdapterSettings {
  bool pause_on_failure = false;
  double pause_timeout = 300;

  static AdapterSettings from_env() {
    AdapterSettings s;
    const char* pause = std::getenv("LPD_PAUSE_ON_FAILURE");
    s.pause_on_failure = pause != nullptr && *pause != '\0' && std::string_view(pause) != "0";
    if (const char* t = std::getenv("LPD_PAUSE_TIMEOUT")) {
      char* end = nullptr;
      const double v = std::strtod(t, &end);
      if (end != t && v > 0) s.pause_timeout = v;
    }
    return s;
  }
};

/// The line the adapters print (and record) when a failure pause was resumed
/// with a reason; the same title the pytest plugin uses.
inline std::string external_failure_text(const std::string& reason) {
  return "external failure reason (lpd): " + reason;
}

/// Session connects from the environment and installs the crash handler;
/// its destructor ends the run cleanly (run.end). One per process, in main.
class Session {
 public:
  explicit Session(bool crash_handler = true) {
    lpd_shim_connect_from_env();
    if (crash_handler) lpd_shim_install_crash_handler();
  }
  ~Session() { lpd_shim_close(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

/// TestScope reports one test: started now, finished when it goes out of
/// scope, as passed unless fail() or skip() was called.
class TestScope {
 public:
  explicit TestScope(std::string nodeid) : nodeid_(std::move(nodeid)), start_(std::chrono::steady_clock::now()) {
    lpd_shim_test_started(nodeid_.c_str());
  }
  ~TestScope() {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start_;
    lpd_shim_test_finished(nodeid_.c_str(), outcome_, took.count(), message_.c_str());
  }
  TestScope(const TestScope&) = delete;
  TestScope& operator=(const TestScope&) = delete;

  void fail(std::string message = {}) {
    outcome_ = LPD_SHIM_FAILED;
    message_ = std::move(message);
  }
  void skip() { outcome_ = LPD_SHIM_SKIPPED; }
  const std::string& nodeid() const { return nodeid_; }

 private:
  std::string nodeid_;
  std::chrono::steady_clock::time_point start_;
  lpd_shim_test_outcome outcome_ = LPD_SHIM_PASSED;
  std::string message_;
};

}  // namespace lpd::shim
