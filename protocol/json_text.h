#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lpd::protocol {

/// Writing JSON text straight into a buffer, for the few lines lpd writes
/// tens of thousands of times (per-test events and journal lines), where
/// building a nlohmann::json tree only to dump it was most of the cost.
/// The text reads back as the value nlohmann's dump() would have written;
/// numbers may be spelled differently (shortest round-trip form).

/// How many bytes at the start of `text` a JSON string holds as they are:
/// printable ASCII other than '"' and '\\' (0x20-0x7F). Returns text.size()
/// when all are. Reads eight bytes at a time: the scanners of every
/// per-test record and journal line spend most of their time here.
std::size_t plain_json_prefix(std::string_view text);

/// How many bytes at the start of `text` form a JSON number (RFC 8259's
/// grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?), the longest
/// such prefix; 0 when it does not start with one.
std::size_t json_number_prefix(std::string_view text);

/// Appends `text` as a JSON string. Plain printable ASCII is copied as it
/// is; anything else goes through nlohmann's serializer, which escapes it
/// and replaces invalid UTF-8 with U+FFFD (error_handler_t::replace).
void append_json_string(std::string& out, std::string_view text);

/// Appends `value` as a JSON number that reads back as the same double
/// (with a fraction or exponent, so it reads back as a float); non-finite
/// values as null, as nlohmann writes them. A value that is a whole number
/// of microseconds (every event's time: EventBus keeps microseconds) is
/// written in fixed notation, up to six decimals, without the shortest-form
/// search.
void append_json_number(std::string& out, double value);

/// Appends an integer.
void append_json_integer(std::string& out, std::int64_t value);
void append_json_unsigned(std::string& out, std::uint64_t value);

}  // namespace lpd::protocol
