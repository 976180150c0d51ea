#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <sys/types.h>

namespace lpd::daemon {

/// Moves `path` to `path.1` (replacing an older one), so each start of a
/// helper begins a fresh log and the previous run's stays readable.
void rotate_log(const std::string& path);

/// Opens (creating) a log for a child to append to: O_APPEND so lpd's
/// readers and the child never disagree on the end, O_CLOEXEC so only the
/// child it is handed to keeps it. Mode 0600, owned by `owner` when lpd runs
/// as root; a link, FIFO or device at `path` is refused, never opened.
/// Throws std::system_error.
int open_log_for_append(const std::string& path, std::optional<std::pair<uid_t, gid_t>> owner);

/// Size in bytes; 0 when missing.
std::uint64_t file_size(const std::string& path);

/// Offset where the last `lines` lines before `end` begin, reading the file
/// backwards in blocks (cost grows with the lines asked for, not the file).
/// A final newline does not count as an empty last line.
std::uint64_t offset_of_last_lines(const std::string& path, std::uint64_t lines, std::uint64_t end);

}  // namespace lpd::daemon
