#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace lpd::daemon {

/// The listening socket systemd passed (LISTEN_FDS / LISTEN_PID), if any:
/// with lpd.socket, systemd holds the socket across lpd restarts and
/// clients queue in its backlog. Throws when systemd passed something lpd
/// cannot serve (several fds, or not a listening Unix stream socket).
std::optional<int> systemd_listen_fd();

/// The path a listening Unix socket is bound to.
std::string socket_path_of(int fd);

/// sd_notify wrappers; no-ops without NOTIFY_SOCKET.
void notify_ready();
void notify_stopping();
void notify_watchdog();
/// How often to ping the watchdog (half of WatchdogSec), when it is enabled.
std::optional<std::chrono::microseconds> watchdog_ping_interval();

/// True when stderr is connected to the journal (JOURNAL_STREAM matches it).
bool stderr_is_journal();

}  // namespace lpd::daemon
