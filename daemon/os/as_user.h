#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemon/os/launcher.h"

namespace lpd::daemon {

/// Runs `check` in a short-lived child whose effective ids and groups are
/// `who`'s (real and saved ids stay lpd's, so the user cannot signal or
/// stop it), so every path it touches is resolved with that user's rights: a root lpd learns nothing about a path the user
/// could not see (not even whether it exists), and a group-writable place
/// works as it does for them. `who` nullopt, or an lpd that is not root,
/// runs `check` in lpd itself.
///
/// `check` returns nullopt on success or a message; the child sends it back
/// (at most 64 KiB). lpd is single-threaded, so the child may allocate.
/// Returns the message, or one saying the child could not be made or took
/// over `timeout` (then it is killed). lpd waits for it: checks must be quick.
std::optional<std::string> check_as(const std::optional<Credentials>& who,
                                    const std::function<std::optional<std::string>()>& check,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// Checks, as `who` (see check_as), that `cwd` is a directory they may enter
/// and that `command` resolves (through the PATH in `env`) to a file they
/// may execute. Throws protocol::Error: kNotFound ("working directory ...
/// does not exist", "command not found: ..."), kPermissionDenied.
void check_runnable_as(const std::optional<Credentials>& who, const std::string& command,
                       const std::vector<std::string>& env, const std::string& cwd);

}  // namespace lpd::daemon
