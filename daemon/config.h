#pragma once

#include <chrono>
#include <string>

#include "daemon/access.h"
#include "daemon/history/retention.h"

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
  /// Group given to a socket lpd binds itself as root ("" = none), so that
  /// members (and only they) can connect. systemd's lpd.socket sets its own.
  std::string socket_group;
  /// How many ended runs, and how old, lpd keeps (--keep-runs, --keep-days).
  RetentionLimits retention;
};

}  // namespace lpd::daemon
