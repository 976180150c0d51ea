#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace lpd::daemon {

/// ProcStat is the part of /proc/PID/stat that tells one process from
/// another over time: a pid alone can be reused, a pid plus its start time
/// cannot. Session and group let a kill reach a whole process tree.
struct ProcStat {
  pid_t pid = 0;
  char state = '?';              // 'Z' (zombie) and 'X' (dead) count as gone
  pid_t ppid = 0;
  pid_t pgrp = 0;
  pid_t session = 0;
  std::uint64_t start_time = 0;  // clock ticks after boot (field 22)

  bool gone() const { return state == 'Z' || state == 'X'; }
};

/// Parses the text of /proc/PID/stat. The command name in parentheses may
/// itself hold spaces and parentheses, so fields are counted from the last ')'.
std::optional<ProcStat> parse_proc_stat_text(std::string_view text);

/// Reads /proc/PID/stat; nullopt when the pid does not exist.
std::optional<ProcStat> read_proc_stat(pid_t pid);

/// What became of a recorded (pid, start time).
enum class Liveness {
  kAlive,   // same pid, same start time, not a zombie
  kGone,    // no such pid, or only its zombie is left
  kReused,  // the pid now belongs to another process: never signal it
};

Liveness check_liveness(pid_t pid, std::uint64_t start_time);

/// Every live process whose session is `session` (the supervised process
/// called setsid, so its pid is the session id of its whole tree). One scan
/// of /proc; used when killing, not on any hot path.
std::vector<pid_t> session_members(pid_t session);

}  // namespace lpd::daemon
