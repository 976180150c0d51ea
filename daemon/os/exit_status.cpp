#include "daemon/os/exit_status.h"

#include "protocol/signal_names.h"

namespace lpd::daemon {

std::string ExitStatus::describe() const {
  if (signal) {
    const auto name = protocol::known_signal_name(*signal);
    return "signal " + std::to_string(*signal) + (name ? " (" + *name + ")" : std::string());
  }
  if (exit_code) return "exit code " + std::to_string(*exit_code);
  return "unknown exit status (lpd was restarted, so it is not the parent)";
}

}  // namespace lpd::daemon
