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
/// stale socket file that nothing listens on, binds and listens. Refuses a
/// path that exists and is not a socket, and one where a daemon answers.
/// Returns the listening fd (close-on-exec).
int bind_listening_socket(const std::string& path, mode_t dir_mode, mode_t socket_mode);

}  // namespace lpd::daemon
