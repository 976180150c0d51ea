#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "daemon/pauses/pause_registry.h"

namespace lpd::daemon {

/// The largest command file lpd reads from a pause directory's commands/:
/// a decision is a few hundred bytes; anything near this is not one.
constexpr std::size_t kMaxPauseCommandBytes = 64 * 1024;

/// The pause a command file is for: "<pause_id>.resume.json" (the name
/// pytest-live-pause's CLI writes) gives pause_id; any other name (an
/// editor's temp file, a `.tmp` renamed into place later) is no command:
/// nullopt, and lpd leaves it alone.
std::optional<std::string> pause_id_of_command_file(std::string_view file_name);

/// A command file's body read as pause.resume's fields, with the same
/// types `lpctl resume` sends: `failure_reason` (a string) for a failure
/// pause; `result` (true, false or null) and `reason` (a string) for a
/// checkpoint. Which of them the pause takes is PauseRegistry::resume's
/// rule, as for the socket. Returns the request, or the reason the body is
/// refused ("not a JSON object", "\"result\" must be true, false or null").
std::variant<ResumeRequest, std::string> parse_pause_command(std::string_view body);

/// How many refused command files of one run lpd reports: kPerWindow per
/// kWindow. A user rewriting a bad command file in a loop (every close is
/// one refusal) must not fill lpd's events journal, which every user shares.
class RejectionBudget {
 public:
  static constexpr unsigned kPerWindow = 10;
  static constexpr std::chrono::seconds kWindow{60};
  struct Verdict {
    bool report = false;               // publish this refusal
    std::uint64_t unreported_before = 0;  // refusals left unreported since the last one reported
  };
  /// One refusal at `now` (steady clock).
  Verdict take(std::chrono::steady_clock::time_point now);

 private:
  std::chrono::steady_clock::time_point window_start_{};
  unsigned used_ = 0;
  std::uint64_t unreported_ = 0;
};

}  // namespace lpd::daemon
