#pragma once

#include <optional>
#include <string>

namespace lpd::daemon {

/// How a process ended, as far as anyone could tell. Only its parent learns
/// this (by reaping it: lpd for its own children, lpd-monitor or an xdist
/// controller for theirs); for a process lpd did not start in this lifetime
/// both fields are empty. When both are set (a damaged record) the signal
/// is how it ended.
struct ExitStatus {
  std::optional<int> signal;     // the terminating signal
  std::optional<int> exit_code;  // the exit code when it exited normally

  /// Whether anyone saw how it ended.
  bool known() const { return signal.has_value() || exit_code.has_value(); }
  /// "exit code 3", "signal 9 (SIGKILL)", "unknown exit status (...)".
  std::string describe() const;
};

}  // namespace lpd::daemon
