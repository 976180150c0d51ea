#pragma once

#include <string_view>

namespace lpd::daemon {

/// Writes every byte of `bytes` to `fd`, going on after short writes and
/// EINTR. Returns 0, or the errno of the write that failed, which errno
/// also holds then (EIO for a write that wrote nothing: going on would loop
/// forever). Allocates nothing, so a forked child may call it.
int write_all(int fd, std::string_view bytes) noexcept;

}  // namespace lpd::daemon
