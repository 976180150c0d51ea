#pragma once

#include <cstddef>

namespace lpd::protocol {

/// One message is one line; a line longer than this (newline excluded) is
/// rejected with `too_large` and the connection is closed, because the rest
/// of the stream can no longer be framed reliably.
inline constexpr std::size_t kMaxLineBytes = 1024 * 1024;

}  // namespace lpd::protocol
