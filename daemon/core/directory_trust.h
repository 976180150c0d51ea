#pragma once

#include <optional>
#include <string>

#include <sys/types.h>

// Which directories lpd may keep its socket, locks and state in, and how it
// makes and narrows its own: the rule every lpd directory passes before lpd
// writes there (another user's directory is theirs to fill with links).

namespace lpd::daemon {

/// Creates `path` and missing parents with `mode` (like mkdir -p).
void make_directories(const std::string& path, mode_t mode);

/// Why a directory (or a link to one) with `owner` and `mode` cannot hold
/// lpd's socket, locks or state when lpd runs as `euid`; nullopt if it can.
/// Trusted: owned by `euid` or root and writable by nobody else, or, when
/// `allow_shared_sticky`, root's sticky directory such as /tmp (others may
/// create there but not replace what is ours). Anyone else's directory is
/// theirs to fill with links and fake sockets. A pure rule: no I/O.
std::optional<std::string> directory_distrust(uid_t owner, mode_t mode, uid_t euid, bool allow_shared_sticky);

/// Throws std::runtime_error naming `path`, its owner and mode unless the
/// directory is trusted by directory_distrust() (a link at `path` is judged
/// too, then what it points to), or when it cannot be examined.
void require_trusted_directory(const std::string& path, bool allow_shared_sticky);

/// Narrows the mode of directory `path` (lpd's own: call after
/// require_trusted_directory) to at most `mode`, when an older lpd or a
/// laxer umask made it readable by others (a link at `path`, which
/// require_trusted_directory judged with its target, is followed). Throws
/// std::runtime_error when the directory cannot be opened or changed.
void make_private(const std::string& path, mode_t mode);

}  // namespace lpd::daemon
