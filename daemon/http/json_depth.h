// how deeply a JSON text nests, before anyone parses it.
#pragma once

#include <cstddef>
#include <string_view>

namespace lpd::daemon::http {

/// JSON that HTTP and WebSocket clients send (and lines lpd re-frames for
/// them) nests at most this deep. nlohmann's parser is iterative, but
/// copying and dump() recurse once per level: a 90000-deep body overflowed
/// lpd's stack. lpd's own ops nest a handful of levels; 64 leaves room.
inline constexpr std::size_t kMaxJsonDepth = 64;

/// Whether `text` opens at most `max_depth` arrays/objects inside one
/// another. Brackets inside strings (escapes honoured) do not count; the
/// text need not be valid JSON (the parser says what else is wrong).
/// One pass, no recursion, no allocation.
bool json_depth_within(std::string_view text, std::size_t max_depth = kMaxJsonDepth);

/// The message for a text json_depth_within refused.
inline constexpr std::string_view kTooDeepMessage =
    "the JSON nests arrays/objects more than 64 levels deep; lpd takes no deeper JSON over HTTP";

}  // namespace lpd::daemon::http
