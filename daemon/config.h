#pragma once

#include <chrono>
#include <string>

#include "daemon/core/access.h"
#include "daemon/history/journal_quota.h"
#include "daemon/history/retention.h"
#include "daemon/logs/log_cap_rules.h"
#include "daemon/jobs/run_output_rules.h"

namespace lpd::daemon {

/// Everything `lpd start` was told, after defaults were applied.
struct DaemonConfig {
  std::string socket_path;
  std::string state_dir;
  std::string log_level = "info";
  bool foreground = false;
  /// A connection that has not said hello by then is closed.
  std::chrono::milliseconds hello_timeout{10'000};
  /// Connections one user other than root may hold open (0: no limit).
  std::size_t connections_per_user = 1024;
  AccessPolicy access;
  /// Group given to a socket lpd binds itself as root ("" = none), so that
  /// members (and only they) can connect. systemd's lpd.socket sets its own.
  std::string socket_group;
  /// How many ended runs, and how old, lpd keeps (--keep-runs, --keep-days).
  RetentionLimits retention;
  /// how much disk helper logs may take (--helper-log-max,
  /// --helper-logs-per-user-max, --helpers-per-user-max).
  HelperLogLimits helper_logs;
  /// how much disk run outputs may take (--run-output-max,
  /// --run-outputs-per-user-max).
  RunOutputLimits run_output;
  /// how much disk runs' event journals may take (--run-events-max,
  /// --run-events-per-user-max).
  JournalLimits run_events;
  /// `--http ADDR:PORT` ("" = no HTTP server) and
  /// `--http-allow-remote` (a non-loopback address is refused without it).
  std::string http_listen;
  bool http_allow_remote = false;
};

}  // namespace lpd::daemon
