#pragma once

#include <stdexcept>
#include <string>

#include <sys/types.h>

namespace lpd::daemon {

/// Thrown when a daemon already answers on the socket we were asked to use.
class AlreadyRunning : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Creates the socket's directory if missing (with `dir_mode`), replaces a
/// stale socket file (nothing accepts on it, or the process that listened
/// on it is gone), binds and listens. Refuses a path that exists and is not
/// a socket (std::runtime_error), and one a live process listens on
/// (AlreadyRunning, naming its pid).
/// Returns the listening fd (close-on-exec).
int bind_listening_socket(const std::string& path, mode_t dir_mode, mode_t socket_mode);

}  // namespace lpd::daemon
