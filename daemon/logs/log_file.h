#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/stat.h>
#include <sys/types.h>

#include "daemon/core/unique_fd.h"

namespace lpd::daemon {

/// What a new start does to a helper's kept logs.
struct LogRotation {
  std::vector<std::string> kept;     // newest first, the new start's log first
  std::vector<std::string> removed;  // the oldest, beyond `keep`
};

/// Each start gets its own log, never renamed while anyone may read it
/// (pytest-xprocess#91 lost a helper's log when the log of a restart took
/// its name). The newest `keep` (at least 1) are kept; duplicates of
/// `new_log` in `kept` are dropped.
LogRotation rotate_logs(const std::vector<std::string>& kept_newest_first, const std::string& new_log,
                        std::size_t keep);

/// Whether `path` is a log of the helper whose file stem is `stem`: exactly
/// `logs_dir`/STEM.N.log. Only such paths are ever removed, whatever a state
/// file claims.
bool is_log_of(std::string_view path, std::string_view logs_dir, std::string_view stem);

/// Creates a new log for a child to append to (O_EXCL: never an existing
/// file, never through a link): O_APPEND so lpd's readers and the child
/// never disagree on the end, O_CLOEXEC so only the child it is handed to
/// keeps it. Mode 0600, owned by `owner` when lpd runs as root; a link,
/// FIFO or device at `path` is refused, never opened. -1 with errno EEXIST
/// when `path` exists. Throws std::system_error otherwise.
int create_log(const std::string& path, std::optional<std::pair<uid_t, gid_t>> owner);

/// Size in bytes; 0 when missing.
std::uint64_t file_size(const std::string& path);

/// Offset where the last `lines` lines before `end` begin, reading the file
/// backwards in blocks (cost grows with the lines asked for, not the file).
/// A final newline does not count as an empty last line. Never before the
/// first byte the size cap kept (first_kept_offset): what was freed is no line.
std::uint64_t offset_of_last_lines(const std::string& path, std::uint64_t lines, std::uint64_t end);

/// the text of the last `lines` lines of the log at `path`, at
/// most `max_bytes` of them (the newest; a line cut at the front starts
/// with "[...] "), read backwards from its end as offset_of_last_lines, so
/// an unterminated last line is included. What the size cap freed is not
/// text. "" when the log is empty; nullopt when it cannot be read (missing,
/// a link or not a regular file: opened as untrusted). Failure messages
/// show this, never a copy kept elsewhere that could be behind the file.
/// A log opened to be read (open_untrusted: never through a link, never a
/// FIFO), with its fstat; nullopt when it cannot be opened or examined.
struct OpenedLog {
  UniqueFd fd;
  struct stat st {};
};
std::optional<OpenedLog> open_log_to_read(const std::string& path);

std::optional<std::string> last_log_lines(const std::string& path, std::uint64_t lines, std::size_t max_bytes);

/// the first offset at or after `offset` that holds data, for a
/// reader of a log whose oldest part the size cap freed (a hole punched at
/// its front reads as zeros, which no helper wrote). `offset` itself when
/// it holds data or the file system cannot tell (no SEEK_DATA); the file's
/// end when only a hole follows. Like `cp --sparse`, it asks lseek(SEEK_DATA).
std::uint64_t next_data_offset(int fd, std::uint64_t offset);

/// where the kept part of the log at `path` begins (0 when
/// nothing was freed, or it cannot be read).
std::uint64_t first_kept_offset(const std::string& path);

}  // namespace lpd::daemon
