#pragma once

#include <string>

namespace lpd::daemon {

/// How a process ended. Only a parent learns this (by reaping); for a
/// re-adopted process that lpd did not start in this lifetime it is unknown.
struct ExitStatus {
  bool known = false;
  int code = -1;   // exit code when it exited normally
  int signal = 0;  // terminating signal, 0 when it exited normally

  /// "exit code 3", "signal 9 (SIGKILL)", "unknown exit status (...)".
  std::string describe() const;
};

}  // namespace lpd::daemon
