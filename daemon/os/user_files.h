#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "daemon/os/launcher.h"

namespace lpd::daemon {

/// How write_file_as puts bytes into a file the user named.
enum class UserWrite {
  kReplace,        // write `<path>.lpd-new`, fsync, rename over `path` (a --junit report)
  kAppend,         // one write() at the end, fsync (a --crash-log journal line)
  kCheckWritable,  // write nothing: would kReplace succeed? (checked when a run starts)
};

/// Why write_file_as failed: the errno (EINVAL for "not a regular file")
/// and a message for the user naming the path and the reason.
struct UserWriteError {
  int error = 0;
  std::string message;
};

/// Writes a file a user asked for (`lpctl run --junit/--crash-log`) with
/// that user's whole identity: uid, gid and supplementary groups, as the
/// kernel would check them for the user's own process. A root lpd forks a
/// child that drops to `who` before touching the path, so lpd never writes
/// where the user could not, and a group-writable directory works as it
/// does for them. `who` nullopt (or a non-root lpd) writes as lpd itself.
///
/// The target must be (or become) a regular file: a FIFO, device or
/// directory there is refused without blocking. New files get mode 0644
/// (umask 022), as the user's own tools would make them.
///
/// Returns nullopt on success, else the error, with a message like "cannot
/// write /x/report.xml as uid 1001: Permission denied". Never throws for a
/// failure of the write itself.
std::optional<UserWriteError> write_file_as(const std::optional<Credentials>& who, const std::string& path,
                                         std::string_view bytes, UserWrite mode);

}  // namespace lpd::daemon
