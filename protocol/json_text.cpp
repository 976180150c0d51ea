#include "protocol/json_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>

#include <nlohmann/json.hpp>

namespace lpd::protocol {

void append_json_string(std::string& out, std::string_view text) {
  // ASCII is escaped here as nlohmann escapes it (a run's output is mostly
  // text with newlines, pushed every window). Bytes past ASCII must be
  // valid UTF-8 or be replaced: at the first one, nlohmann's serializer
  // writes the whole string instead.
  const std::size_t start = out.size();
  out += '"';
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') continue;
    if (c >= 0x80) {
      out.resize(start);
      out += nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return;
    }
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out.append(escaped, sizeof escaped);
      }
    }
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
}

void append_json_number(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";  // what the JSON library writes for them
    return;
  }
  char buffer[40];
  const auto [end, ec] = std::to_chars(std::begin(buffer), std::end(buffer) - 2, value);
  if (ec != std::errc()) {
    out += nlohmann::json(value).dump();
    return;
  }
  out.append(buffer, end);
  // 2.0 is written "2": say ".0" as nlohmann does, so it reads back as a float.
  if (std::none_of(buffer, end, [](char c) { return c == '.' || c == 'e' || c == 'E'; })) out += ".0";
}

void append_json_integer(std::string& out, std::int64_t value) {
  char buffer[24];
  const auto [end, ec] = std::to_chars(std::begin(buffer), std::end(buffer), value);
  out.append(buffer, end);
}

void append_json_unsigned(std::string& out, std::uint64_t value) {
  char buffer[24];
  const auto [end, ec] = std::to_chars(std::begin(buffer), std::end(buffer), value);
  out.append(buffer, end);
}

}  // namespace lpd::protocol
