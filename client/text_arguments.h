#pragma once
// lpctl refuses a command line lpd would not run as given.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "client/usage_error.h"

namespace lpd::client {

/// The offset of the first byte of `text` that is not part of valid UTF-8
/// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF,
/// the rules nlohmann's parser and Python's strict decoder apply); nullopt
/// when all of it is valid.
inline std::optional<std::size_t> first_invalid_utf8(std::string_view text) {
  std::size_t i = 0;
  const auto byte = [&](std::size_t at) { return static_cast<unsigned char>(text[at]); };
  while (i < text.size()) {
    const unsigned char c = byte(i);
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;   // overlong
      if (c == 0xED) high = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;   // overlong
      if (c == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + length > text.size()) return i;
    if (byte(i + 1) < low || byte(i + 1) > high) return i;
    for (std::size_t k = 2; k < length; ++k)
      if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return i;
    i += length;
  }
  return std::nullopt;
}

/// `text` with each byte that is not printable ASCII as \xNN: a name that
/// cannot be shown as it is, shown without sending garbage to a terminal.
inline std::string escaped_bytes(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out.push_back(ch);
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

/// Throws UsageError when a string anywhere in `fields` (a request about to
/// be sent) is not valid UTF-8, naming it as the user knows it: "argv[2]",
/// "environment variable NAME", "the working directory", else the field.
/// JSON text is UTF-8: sent anyway, such a string would reach lpd with
/// U+FFFD in place of the bytes (another command than the one asked), or
/// be refused there; lpctl says why instead, before connecting.
inline void require_utf8_fields(const nlohmann::json& fields) {
  const auto check = [](const std::string& text, const std::string& what, const std::string& hint = {}) {
    if (const auto at = first_invalid_utf8(text))
      throw UsageError(what + " is not valid UTF-8 (byte 0x" + escaped_bytes(text.substr(*at, 1)).substr(2) +
                       " at offset " + std::to_string(*at) + " of \"" + escaped_bytes(text) +
                       "\"); lpd passes commands, arguments, environment and paths as UTF-8 text" + hint);
  };
  // lpctl sends its own environment: the variable may be none of the user's doing.
  const std::string env_hint = "; unset it, or set it with --env NAME=VALUE";
  for (const auto& [key, value] : fields.items()) {
    if (key == "env" && value.is_object()) {
      for (const auto& [name, v] : value.items()) {
        check(name, "the name of environment variable \"" + escaped_bytes(name) + "\"", "; unset it");
        if (v.is_string()) check(v.get_ref<const std::string&>(), "environment variable " + name, env_hint);
      }
    } else if (value.is_array()) {
      for (std::size_t i = 0; i < value.size(); ++i)
        if (value[i].is_string()) check(value[i].get_ref<const std::string&>(), key + "[" + std::to_string(i) + "]");
    } else if (value.is_string()) {
      check(value.get_ref<const std::string&>(), key == "cwd" ? "the working directory (cwd)" : key);
    }
  }
}

}  // namespace lpd::client
