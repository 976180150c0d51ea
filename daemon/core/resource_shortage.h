#pragma once

#include <cerrno>
#include <cstring>
#include <string>

namespace lpd::daemon {

/// True for the errno values by which the system says lpd ran short of
/// something (descriptors, memory, processes) rather than that a request
/// was wrong or a process gone. They are answered with code `unavailable`
/// ("try again later") and never taken for anything else.
inline bool is_resource_shortage(int error) {
  return error == EMFILE || error == ENFILE || error == ENOMEM || error == EAGAIN || error == ENOBUFS;
}

/// Says which shortage `error` is, naming the errno so that a user can
/// search for it: "lpd is out of file descriptors (EMFILE)". Any other
/// errno gets its usual text and name: "Permission denied (EACCES)".
inline std::string describe_shortage(int error) {
  const char* name = ::strerrorname_np(error);
  const std::string code = std::string(" (") + (name ? name : std::to_string(error).c_str()) + ")";
  switch (error) {
    case EMFILE: return "lpd is out of file descriptors" + code;
    case ENFILE: return "the system is out of file descriptors" + code;
    case ENOMEM:
    case ENOBUFS: return "lpd is out of memory" + code;
    case EAGAIN: return "lpd cannot start more processes now" + code;
    default: return std::strerror(error) + code;
  }
}

}  // namespace lpd::daemon
