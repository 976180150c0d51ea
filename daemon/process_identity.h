#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <sys/types.h>

namespace lpd::daemon {

/// What /proc says about a pid: enough to tell "the same process is still
/// there" from "gone" and from "the pid now belongs to someone else".
struct ProcessIdentity {
  std::uint64_t start_time = 0;  // clock ticks after boot (field 22 of /proc/PID/stat)
  char state = '?';              // 'Z' (zombie) and 'X' count as gone
};

/// Parses the text of /proc/PID/stat (comm may contain spaces and parens).
std::optional<ProcessIdentity> parse_proc_stat(const std::string& text);
std::optional<ProcessIdentity> read_process_identity(pid_t pid);

/// True when `pid` runs and, if `start_time` is non-zero, started then.
bool same_process_alive(pid_t pid, std::uint64_t start_time);

}  // namespace lpd::daemon
