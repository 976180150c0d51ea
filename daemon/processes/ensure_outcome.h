#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lpd::daemon {

/// what an answered `proc.ensure` did, so a reply never says
/// "started" for a caller that started nothing.
enum class EnsureOutcome {
  kStarted,  // this call started the helper
  kJoined,   // a start was already under way: this call waited for it
  kReused,   // it already ran and was ready: answered at once
  /// only_if_running, and it neither runs nor is starting: nothing done,
  /// the caller sends the whole request (with its environment) next.
  kNotRunning,
};

/// "started", "joined", "reused", "not_running": the reply's `outcome` field.
std::string_view to_string(EnsureOutcome outcome);

/// What the running helper was started with, against what an ensure asks.
struct EnsureAsk {
  const std::vector<std::string>& argv;
  const std::string& pattern;  // "": none
  const std::string& cwd;
};

/// The fields in which a helper that is reused or joined differs from the
/// request ("argv", "pattern", "cwd", in that order; empty when none).
/// pytest-xprocess reuses a running helper whatever its starter's args;
/// lpd reuses it too but says so, rather than silently hand back a server
/// started with other arguments. The environment is not compared: lpd
/// does not keep a helper's environment (it may hold secrets).
std::vector<std::string> ensure_differences(const EnsureAsk& running, const EnsureAsk& asked);

}  // namespace lpd::daemon
