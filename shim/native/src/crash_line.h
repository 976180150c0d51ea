#pragma once

#include <cstddef>
#include <string_view>

namespace lpd::shim {

/// The pieces of the crash notice the signal handler writes. Escaping runs
/// at test start (it may be slow, it is not in a handler); formatting runs in
/// the handler, so it only copies bytes and prints one integer: no locale,
/// no allocation, no libc call that is not async-signal-safe.

/// Writes `text` as the inside of a JSON string (no quotes) into out, NUL
/// terminated, and returns the length. Escapes '"', '\\' and control bytes;
/// replaces bytes that are not valid UTF-8 with U+FFFD; stops before a
/// character that would not fit, so the result is always valid.
std::size_t json_escape_into(std::string_view text, char* out, std::size_t capacity);

/// Formats "\n{"op":"crash.notice","signal":N,"nodeid":"<escaped>"}\n" into
/// out and returns its length (0 if it does not fit). The leading newline
/// ends any line another thread was half-way through sending, so the notice
/// is always a line of its own (the daemon ignores blank lines).
/// Async-signal-safe.
std::size_t format_crash_line(int signal, const char* escaped_nodeid, std::size_t nodeid_length, char* out,
                              std::size_t capacity);

}  // namespace lpd::shim
