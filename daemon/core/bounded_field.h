#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace lpd::daemon {

/// Each text field of a record that lists or events show is bounded when
/// lpd stores it, so that no record can grow a list's page, or an event,
/// past the protocol's 1 MiB line limit: a 1 MB cwd in one user's
/// run.register made `lpctl runs -a` fail `too_large` for every user.

/// The most bytes of a hostname a run or pause keeps (HOST_NAME_MAX is 64
/// on Linux: room to spare).
inline constexpr std::size_t kMaxHostnameBytes = 255;
/// The most bytes of a cwd: PATH_MAX, counted with its NUL as the kernel
/// does (no process can chdir into a longer path: ENAMETOOLONG).
inline constexpr std::size_t kMaxCwdBytes = 4095;

/// The most bytes of a pause's task, failure text and decision reasons: a
/// pause list page holds many pauses.
inline constexpr std::size_t kMaxPauseTextBytes = 64 * 1024;

/// `text` as a record keeps it: whole when it has at most `most_bytes`
/// bytes, else its first `most_bytes` bytes (never ending inside a UTF-8
/// character) and " ... (N bytes, not kept)", N the whole text's size.
std::string bounded_text(std::string text, std::size_t most_bytes);

/// Throws protocol::Error bad_request when a request's `cwd` (a command's
/// working directory, absolute) is longer than kMaxCwdBytes: no process
/// could start there, and the record would carry it.
void check_cwd_length(const std::string& cwd);

/// The most bytes of a helper's argv (each argument with its NUL): twice
/// the most one argument may have (MAX_ARG_STRLEN), far past any real
/// server's command line.
inline constexpr std::size_t kMaxHelperArgvBytes = 256 * 1024;

/// Throws protocol::Error bad_request when `argv` has more than `most_bytes`
/// (each argument counted with its NUL), naming `what` ("a helper's").
void check_argv_size(const std::vector<std::string>& argv, std::size_t most_bytes, const char* what);

}  // namespace lpd::daemon
