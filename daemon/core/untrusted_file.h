#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>

#include "daemon/core/unique_fd.h"

namespace lpd::daemon {

/// Opens `path` read-only as a file a user may have planted or replaced:
/// a symbolic link in its last component is refused (O_NOFOLLOW), a FIFO or
/// device cannot block or feed lpd (O_NONBLOCK, then anything but a regular
/// file is refused), and the descriptor is close-on-exec. lpd reads every
/// file of its state directory and every log through this.
/// Throws std::system_error: ENOENT when missing, ELOOP for a link, EINVAL
/// ("not a regular file") for a FIFO, socket, device or directory.
UniqueFd open_untrusted(const std::string& path);

/// open_untrusted's rules for a file lpd also writes (`access`: O_RDWR,
/// with O_CREAT and `mode` to make it), without an exception: the
/// descriptor, or none with `error` set (the errno; EINVAL for anything
/// but a regular file). `why_not(error)` words it: strerror, or "not a
/// regular file".
UniqueFd open_untrusted(const std::string& path, int access, mode_t mode, int& error);
std::string why_not(int error);

/// What read_bounded found.
struct BoundedRead {
  std::string bytes;     // at most the limit
  bool truncated = false;  // the file holds more than the limit
};

/// Reads `fd` from offset 0, at most `max_bytes` (one byte more is read to
/// tell a file of exactly the limit from a longer one). Throws
/// std::system_error on a read error.
BoundedRead read_bounded(int fd, std::size_t max_bytes);

/// The whole of a small untrusted file (open_untrusted + read_bounded):
/// nullopt when it is missing, not a regular file, a link, unreadable or
/// larger than `max_bytes`. For records lpd can do without (a torn or
/// planted one is treated as absent, and logged by the caller).
std::optional<std::string> read_untrusted_file(const std::string& path, std::size_t max_bytes);

}  // namespace lpd::daemon
