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
/// stale socket file (nothing accepts on it, or the one that listened on it
/// is `dead_lpd`: the previous lpd, whose lock the caller now holds; 0 when
/// not known), binds and listens. Refuses a path that exists and is not a
/// socket (std::runtime_error), and one anyone else listens on
/// (AlreadyRunning, naming its pid). Returns the listening fd
/// (close-on-exec).
int bind_listening_socket(const std::string& path, mode_t dir_mode, mode_t socket_mode, pid_t dead_lpd = 0);

}  // namespace lpd::daemon
