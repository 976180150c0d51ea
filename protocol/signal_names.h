#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace lpd::protocol {

/// The one table of signal names lpd, lpctl and the shims' records share:
/// the C library's (sigabbrev_np), so every signal the kernel names has the
/// name `kill -l` gives it.

/// "SIGSEGV" for 11; nullopt for a number without a name (0, real-time signals).
std::optional<std::string> known_signal_name(int signo);
/// "SIGSEGV" for 11, "SIG34" for a number without a name.
std::string signal_name(int signo);
/// Parses a signal as kill(1) takes it: "TERM", "SIGTERM", "term" or "15"
/// (1 to NSIG-1); nullopt when it names no signal.
std::optional<int> signal_number(std::string_view text);

}  // namespace lpd::protocol
