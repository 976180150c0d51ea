#include "daemon/processes/ensure_outcome.h"

namespace lpd::daemon {

std::string_view to_string(EnsureOutcome outcome) {
  switch (outcome) {
    case EnsureOutcome::kStarted:
      return "started";
    case EnsureOutcome::kJoined:
      return "joined";
    case EnsureOutcome::kReused:
      return "reused";
    case EnsureOutcome::kNotRunning:
      return "not_running";
  }
  return "started";
}

std::vector<std::string> ensure_differences(const EnsureAsk& running, const EnsureAsk& asked) {
  std::vector<std::string> differs;
  if (running.argv != asked.argv) differs.emplace_back("argv");
  if (running.pattern != asked.pattern) differs.emplace_back("pattern");
  if (running.cwd != asked.cwd) differs.emplace_back("cwd");
  return differs;
}

}  // namespace lpd::daemon
