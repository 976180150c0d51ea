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

/// Reads /proc/PID/stat. nullopt when it cannot, and errno then says why:
/// ENOENT or ESRCH when there is no such process, anything else (EMFILE,
/// ENFILE, ENOMEM, EINVAL for garbled text...) when lpd simply could not look.
std::optional<ProcStat> read_proc_stat(pid_t pid);

/// What became of a recorded (pid, start time).
enum class Liveness {
  kAlive,    // same pid, same start time, not a zombie
  kGone,     // no such pid, or only its zombie is left
  kReused,   // the pid now belongs to another process: never signal it
  kUnknown,  // lpd could not look (out of descriptors, ...): not a death; ask again later
};

std::string_view to_string(Liveness liveness);

/// True for the errno values by which the kernel says "there is no such
/// process" (ESRCH from pidfd_open or a read, ENOENT from opening
/// /proc/PID/...). Only these are evidence of a death; every other failure
/// (EMFILE, ENFILE, ENOMEM, EACCES...) says nothing about the process.
bool is_no_such_process(int error);

/// The liveness rule, without I/O: what one read of /proc/PID/stat says of
/// the process recorded with `start_time`. `stat` is what was read, or
/// nullopt with the read's errno in `read_error`. A `start_time` of 0 means
/// it was never recorded: any live process with the pid counts as it.
Liveness judge_liveness(const std::optional<ProcStat>& stat, int read_error, std::uint64_t start_time);

/// Reads /proc/PID/stat and judges it (see judge_liveness).
Liveness check_liveness(pid_t pid, std::uint64_t start_time);

}  // namespace lpd::daemon
