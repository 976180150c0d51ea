#include "daemon/os/exit_status.h"

#include <cstring>

namespace lpd::daemon {

std::string ExitStatus::describe() const {
  if (!known) return "unknown exit status (lpd was restarted, so it is not the parent)";
  if (signal != 0) {
    const char* name = ::sigabbrev_np(signal);
    return "signal " + std::to_string(signal) + (name ? std::string(" (SIG") + name + ")" : std::string());
  }
  return "exit code " + std::to_string(code);
}

}  // namespace lpd::daemon
