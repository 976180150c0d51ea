#pragma once

#include <string_view>

namespace lpd::daemon {

/// A supervised process's NAME is also a file name under the state
/// directory (procs/NAME.json, logs/NAME.log), so it is restricted to
/// `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`: nothing can climb out with "..", a
/// slash or a leading dot.
bool is_valid_process_name(std::string_view name);

/// Throws protocol::Error(kBadRequest) naming the rule when `name` breaks it.
void require_valid_process_name(std::string_view name);

}  // namespace lpd::daemon
