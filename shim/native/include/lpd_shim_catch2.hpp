// lpd_shim_catch2.hpp: Catch2 v2 (2.13) adapter for lpd's native shim.
//
// One line in one test source (include this header instead of, or before,
// catch.hpp: listeners need CATCH_CONFIG_EXTERNAL_INTERFACES, defined here):
//     #include <lpd_shim_catch2.hpp>
//     CATCH_REGISTER_LISTENER(LpdShimCatch2Listener)
//
// Every test case's start and end goes to lpd (nodeid: the test case name),
// hard crashes are attributed to the running test case, and with
// LPD_PAUSE_ON_FAILURE set a test case pauses at its first failed assertion
// until `lpctl resume <id> [--failure-reason TEXT]`; the reason is printed.
// Without LPD_SOCKET it does nothing.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#if defined(TWOBLUECUBES_SINGLE_INCLUDE_CATCH_HPP_INCLUDED) && !defined(CATCH_CONFIG_EXTERNAL_INTERFACES)
#error "include lpd_shim_catch2.hpp before catch.hpp, or define CATCH_CONFIG_EXTERNAL_INTERFACES first"
#endif
#ifndef CATCH_CONFIG_EXTERNAL_INTERFACES
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#endif
#include <catch2/catch.hpp>

#include "lpd_shim.hpp"

namespace lpd::shim {

/// Catch2Listener reports Catch2's events to lpd. Catch2 runs its own fatal
/// signal handler during each test case and, inside it, reports a
/// FatalErrorCondition assertion, the test case as ended and the run as over;
/// the listener ignores everything after that assertion (it all happens in a
/// signal handler) and lets lpd's crash handler, which Catch2 re-raises
/// into, send the crash notice for the still-current test.
class Catch2Listener : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;

  void testRunStarting(Catch::TestRunInfo const& info) override {
    TestEventListenerBase::testRunStarting(info);
    settings_ = AdapterSettings::from_env();
    active_ = lpd_shim_connect_from_env() != LPD_SHIM_DISABLED;
    if (active_) lpd_shim_install_crash_handler();
  }

  void testCaseStarting(Catch::TestCaseInfo const& info) override {
    TestEventListenerBase::testCaseStarting(info);
    if (!active_) return;
    nodeid_ = info.name;
    paused_ = false;
    first_failure_.clear();
    start_ = std::chrono::steady_clock::now();
    test_started(nodeid_);
  }

  bool assertionEnded(Catch::AssertionStats const& stats) override {
    const auto& result = stats.assertionResult;
    // Catch2's signal handler reports the signal as this fake assertion
    // (listeners never see fatalErrorEncountered): from here on we are
    // inside a signal handler and must do nothing more.
    if (result.getResultType() == Catch::ResultWas::FatalErrorCondition) fatal_ = true;
    if (!active_ || fatal_ || result.isOk()) return true;
    std::string text = result.getSourceInfo().file + std::string(":") +
                       std::to_string(result.getSourceInfo().line) + ": " + result.getExpressionInMacro() +
                       (result.hasExpandedExpression() ? " with expansion: " + result.getExpandedExpression() : "") +
                       (result.hasMessage() ? " " + result.getMessage() : "");
    if (first_failure_.empty()) first_failure_ = text.substr(0, 2000);
    if (!settings_.pause_on_failure || paused_ || !is_connected()) return true;
    paused_ = true;
    const std::string pause_id = new_pause_id();
    std::printf("[lpd] %s failed; paused before teardown (run %s, pause %s). Resume with: lpctl resume %s "
                "[--failure-reason TEXT]\n", nodeid_.c_str(), run_id().c_str(), pause_id.c_str(), pause_id.c_str());
    std::fflush(stdout);
    if (auto reason = pause_on_failure(nodeid_, text, settings_.pause_timeout, pause_id)) {
      std::printf("[lpd] %s: %s\n", nodeid_.c_str(), external_failure_text(*reason).c_str());
      std::fflush(stdout);
    }
    return true;
  }

  void testCaseEnded(Catch::TestCaseStats const& stats) override {
    TestEventListenerBase::testCaseEnded(stats);
    if (!active_ || fatal_) return;
    const bool failed = stats.totals.assertions.failed > 0 || stats.totals.testCases.failed > 0;
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start_;
    test_finished(nodeid_, failed ? LPD_SHIM_FAILED : LPD_SHIM_PASSED, took.count(),
                  failed ? first_failure_ : std::string());
    nodeid_.clear();
  }

  void testRunEnded(Catch::TestRunStats const& stats) override {
    TestEventListenerBase::testRunEnded(stats);
    if (active_ && !fatal_) lpd_shim_close();
  }

 private:
  AdapterSettings settings_;
  bool active_ = false;
  bool fatal_ = false;
  bool paused_ = false;
  std::string nodeid_;
  std::string first_failure_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace lpd::shim

/// CATCH_REGISTER_LISTENER pastes its argument into an identifier, so it
/// needs an unqualified name.
using LpdShimCatch2Listener = lpd::shim::Catch2Listener;
