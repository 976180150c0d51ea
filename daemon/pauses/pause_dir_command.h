#pragma once

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

}  // namespace lpd::daemon
