#pragma once

#include <string>

namespace lpd::daemon {

/// Foreground: stderr. Daemonized: `<state_dir>/lpd.log`, rotated at 10 MiB.
void setup_logging(bool foreground, const std::string& state_dir, const std::string& level);

}  // namespace lpd::daemon
