// lpd_shim_gtest.hpp: GoogleTest adapter for lpd's native shim.
//
// One line in main, after testing::InitGoogleTest(&argc, argv):
//     lpd::shim::install_gtest_listener();
// or link lpd::shim_gtest_main instead of GTest::gtest_main.
//
// Every test's start and end goes to lpd (nodeid "Suite.Test"), hard crashes
// are attributed to the running test, and with LPD_PAUSE_ON_FAILURE set a
// test pauses at its first failure (before its teardown) until
// `lpctl resume <id> [--failure-reason TEXT]`; the reason is printed and
// added to the test's failures. Without LPD_SOCKET it does nothing.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "lpd_shim.hpp"

namespace lpd::shim {

/// GTestListener reports GoogleTest's events to lpd. It is passive: it never
/// changes a result, except to add the external failure reason a person gave
/// when resuming a failure pause.
class GTestListener : public ::testing::EmptyTestEventListener {
 public:
  explicit GTestListener(AdapterSettings settings = AdapterSettings::from_env()) : settings_(settings) {}

  void OnTestStart(const ::testing::TestInfo& info) override {
    nodeid_ = std::string(info.test_suite_name()) + "." + info.name();
    paused_ = false;
    failure_reason_.reset();
    first_failure_.clear();
    start_ = std::chrono::steady_clock::now();
    test_started(nodeid_);
  }

  void OnTestPartResult(const ::testing::TestPartResult& part) override {
    if (!part.failed()) return;
    std::string text = std::string(part.file_name() ? part.file_name() : "unknown") + ":" +
                       std::to_string(part.line_number()) + ": " + part.message();
    if (first_failure_.empty()) first_failure_ = text.substr(0, 2000);
    // GoogleTest holds its own lock here, so only pause: the reason is
    // added to the results in OnTestEnd.
    if (!settings_.pause_on_failure || paused_ || nodeid_.empty() || !is_connected()) return;
    paused_ = true;
    const std::string pause_id = new_pause_id();
    std::printf("[   LPD    ] %s failed; paused before teardown (run %s, pause %s). Resume with: lpctl resume %s "
                "[--failure-reason TEXT]\n", nodeid_.c_str(), run_id().c_str(), pause_id.c_str(), pause_id.c_str());
    std::fflush(stdout);
    failure_reason_ = pause_on_failure(nodeid_, text, settings_.pause_timeout, pause_id);
    if (failure_reason_) {
      std::printf("[   LPD    ] %s\n", external_failure_text(*failure_reason_).c_str());
      std::fflush(stdout);
    }
  }

  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (failure_reason_) {
      ADD_FAILURE() << external_failure_text(*failure_reason_);
      failure_reason_.reset();
    }
    const auto* result = info.result();
    lpd_shim_test_outcome outcome = LPD_SHIM_PASSED;
    if (result->Skipped()) outcome = LPD_SHIM_SKIPPED;
    if (result->Failed()) outcome = LPD_SHIM_FAILED;
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start_;
    test_finished(nodeid_, outcome, took.count(), outcome == LPD_SHIM_FAILED ? first_failure_ : std::string());
    nodeid_.clear();
  }

  void OnTestProgramEnd(const ::testing::UnitTest&) override { lpd_shim_close(); }

 private:
  AdapterSettings settings_;
  std::string nodeid_;
  std::string first_failure_;
  bool paused_ = false;
  std::optional<std::string> failure_reason_;
  std::chrono::steady_clock::time_point start_;
};

/// Connects from the environment, installs the crash handler and appends a
/// GTestListener (GoogleTest owns and deletes it). Call after InitGoogleTest.
/// Does nothing in the child of a death test, which runs the binary again.
inline void install_gtest_listener() {
  if (!GTEST_FLAG_GET(internal_run_death_test).empty()) return;
  if (lpd_shim_connect_from_env() == LPD_SHIM_DISABLED) return;  // no daemon configured: stay out of the way
  lpd_shim_install_crash_handler();
  ::testing::UnitTest::GetInstance()->listeners().Append(new GTestListener());
}

}  // namespace lpd::shim
