#pragma once

#include <functional>
#include <optional>
#include <string>

#include <sys/types.h>

namespace lpd::protocol {

/// Looks an environment variable up; a parameter so path rules are testable.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

/// Socket path when none is given on the command line:
/// $LPD_SOCKET, else /run/lpd/lpd.sock for root, else
/// $XDG_RUNTIME_DIR/lpd/lpd.sock, else /tmp/lpd-$UID/lpd.sock.
std::string default_socket_path(uid_t uid, const EnvLookup& env);

/// State directory when none is given: /var/lib/lpd for root, else
/// $XDG_STATE_HOME/lpd, else $HOME/.local/state/lpd, else /tmp/lpd-$UID/state.
std::string default_state_dir(uid_t uid, const EnvLookup& env);

}  // namespace lpd::protocol
