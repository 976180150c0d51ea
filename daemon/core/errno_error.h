#pragma once

#include <cerrno>
#include <string>
#include <system_error>

namespace lpd::daemon {

/// Throws std::system_error for errno as it is now, with `what` (what was
/// being done, and to which path) as its message.
[[noreturn]] inline void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

}  // namespace lpd::daemon
