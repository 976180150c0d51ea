#pragma once

#include <chrono>
#include <string>

#include "daemon/access.h"

namespace lpd::daemon {

/// Everything `lpd start` was told, after defaults were applied.
struct DaemonConfig {
  std::string socket_path;
  std::string state_dir;
  std::string log_level = "info";
  bool foreground = false;
  /// A connection that has not said hello by then is closed.
  std::chrono::milliseconds hello_timeout{10'000};
  AccessPolicy access;
};

}  // namespace lpd::daemon
