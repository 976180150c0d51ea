#include "protocol/json_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>

#include <nlohmann/json.hpp>

namespace lpd::protocol {

void append_json_string(std::string& out, std::string_view text) {
  const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
  if (!plain) {
    out += nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return;
  }
  out += '"';
  out += text;
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
