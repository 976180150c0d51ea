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

/// Appends `text` as a JSON string. Plain printable ASCII is copied as it
/// is; anything else goes through nlohmann's serializer, which escapes it
/// and replaces invalid UTF-8 with U+FFFD (error_handler_t::replace).
void append_json_string(std::string& out, std::string_view text);

/// Appends `value` as a JSON number that reads back as the same double
/// (with a fraction or exponent, so it reads back as a float); non-finite
/// values as null, as nlohmann writes them.
void append_json_number(std::string& out, double value);

/// Appends an integer.
void append_json_integer(std::string& out, std::int64_t value);
void append_json_unsigned(std::string& out, std::uint64_t value);

}  // namespace lpd::protocol
