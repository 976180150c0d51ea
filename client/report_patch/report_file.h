#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace lpd::client::report_patch {

/// The largest report lpctl reads to patch: 256 MiB (a pytest-html report
/// of 100,000 tests is about 60 MB). A larger one is refused, never read.
inline constexpr std::size_t kMaxReportBytes = 256u << 20;

/// A report file as found: its text, or nullopt when there is none (ENOENT),
/// and its permission bits (kept when it is replaced).
struct ReportFile {
  std::optional<std::string> text;
  unsigned mode = 0644;
  std::optional<std::pair<unsigned, unsigned>> owner;  // uid, gid of the file found
};

/// Reads the user's report at `path` for patching, as the calling user (lpctl
/// runs as them): opened without following a link (a link there is refused,
/// like lpd's --crash-log), without blocking (a FIFO or device is refused as
/// "not a regular file"), and at most `max_bytes` (a larger file is refused
/// before it is read). Throws std::runtime_error naming the path and why.
ReportFile read_report(const std::string& path, std::size_t max_bytes = kMaxReportBytes);

/// Replaces the report at `path` with `text` atomically: a new file created
/// exclusively beside it (never opened through a link), written, fsynced,
/// given `mode`, and renamed over `path` (which replaces a link planted
/// there since the read, never writes through it). Throws
/// std::runtime_error naming the path and why; the temp file is removed.
/// `owner` (the replaced file's) is kept when lpctl runs as root, so root
/// patching a user's report leaves it the user's.
void replace_report(const std::string& path, const std::string& text, unsigned mode,
                    const std::optional<std::pair<unsigned, unsigned>>& owner = std::nullopt);

/// Writes all of `text` to `fd`, as many write(2) calls as it takes (a call
/// EINTR cut short is made again). Returns 0, or the errno of the call that
/// failed (EIO for a write that took nothing); throws nothing, so the caller
/// can still remove its temp file.
int write_all(int fd, std::string_view text);

}  // namespace lpd::client::report_patch
