#include "protocol/json_text.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>

#include <nlohmann/json.hpp>

namespace lpd::protocol {

// String literals appended with their length known: `+= "..."` went through
// strlen, 6% of lpd's instructions per test.
using namespace std::string_view_literals;

std::size_t plain_json_prefix(std::string_view text) {
  std::size_t i = 0;
  if constexpr (std::endian::native == std::endian::little) {
    // Each test flags a byte's top bit; the lowest flagged byte is exact
    // (a borrow only ever runs towards the higher bytes, past a true one).
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
    const auto zero_byte = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
    for (; i + 8 <= text.size(); i += 8) {
      std::uint64_t w;
      std::memcpy(&w, text.data() + i, 8);
      const std::uint64_t special = ((w - 0x20 * kOnes) & ~w & kHigh)  // below 0x20
                                    | (w & kHigh)                       // 0x80 and up
                                    | zero_byte(w ^ ('"' * kOnes)) | zero_byte(w ^ ('\\' * kOnes));
      if (special) return i + static_cast<std::size_t>(std::countr_zero(special)) / 8;
    }
  }
  for (; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return i;
  }
  return i;
}

std::size_t json_number_prefix(std::string_view text) {
  std::size_t at = 0;
  const auto digits = [&] {
    const std::size_t from = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') ++at;
    return at - from;
  };
  if (at < text.size() && text[at] == '-') ++at;
  const std::size_t first = at;
  const std::size_t whole = digits();
  if (whole == 0) return 0;
  if (whole > 1 && text[first] == '0') at = first + 1;  // "01": the number is "0"
  if (at + 1 < text.size() && text[at] == '.' && text[at + 1] >= '0' && text[at + 1] <= '9') {
    ++at;
    digits();
  }
  if (at < text.size() && (text[at] == 'e' || text[at] == 'E')) {
    std::size_t exponent = at + 1;
    if (exponent < text.size() && (text[exponent] == '+' || text[exponent] == '-')) ++exponent;
    if (exponent < text.size() && text[exponent] >= '0' && text[exponent] <= '9') {
      at = exponent;
      digits();
    }
  }
  return at;
}

void append_json_string(std::string& out, std::string_view text) {
  // ASCII is escaped here as nlohmann escapes it (a run's output is mostly
  // text with newlines, pushed every window). Bytes past ASCII must be
  // valid UTF-8 or be replaced: at the first one, nlohmann's serializer
  // writes the whole string instead.
  const std::size_t start = out.size();
  out += '"';
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = plain_json_prefix(text); i < text.size(); i = run + plain_json_prefix(text.substr(run))) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      out.resize(start);
      out += nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return;
    }
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""sv; break;
      case '\\': out += "\\\\"sv; break;
      case '\b': out += "\\b"sv; break;
      case '\f': out += "\\f"sv; break;
      case '\n': out += "\\n"sv; break;
      case '\r': out += "\\r"sv; break;
      case '\t': out += "\\t"sv; break;
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
    out += "null"sv;  // what the JSON library writes for them
    return;
  }
  // A whole number of microseconds (an event's time): fixed notation. The
  // decimal r/10^6 reads back as the double nearest to it, which is r / 1e6
  // (IEEE division rounds correctly), so the check makes it exact.
  if (!std::signbit(value) && value < 9e9) {
    const auto micros = std::llround(value * 1e6);
    if (static_cast<double>(micros) / 1e6 == value) {
      append_json_integer(out, micros / 1'000'000);
      auto fraction = static_cast<int>(micros % 1'000'000);
      if (fraction == 0) {
        out += ".0"sv;
        return;
      }
      char digits[7] = {'.', '0', '0', '0', '0', '0', '0'};
      std::size_t length = 7;
      for (std::size_t k = 6; k >= 1; --k, fraction /= 10) digits[k] = static_cast<char>('0' + fraction % 10);
      while (digits[length - 1] == '0') --length;
      out.append(digits, length);
      return;
    }
  }
  char buffer[40];
  const auto [end, ec] = std::to_chars(std::begin(buffer), std::end(buffer) - 2, value);
  if (ec != std::errc()) {
    out += nlohmann::json(value).dump();
    return;
  }
  out.append(buffer, static_cast<std::size_t>(end - buffer));
  // 2.0 is written "2": say ".0" as nlohmann does, so it reads back as a float.
  if (std::none_of(buffer, end, [](char c) { return c == '.' || c == 'e' || c == 'E'; })) out += ".0"sv;
}

void append_json_integer(std::string& out, std::int64_t value) {
  char buffer[24];
  const auto [end, ec] = std::to_chars(std::begin(buffer), std::end(buffer), value);
  out.append(buffer, static_cast<std::size_t>(end - buffer));
}

void append_json_unsigned(std::string& out, std::uint64_t value) {
  char buffer[24];
  const auto [end, ec] = std::to_chars(std::begin(buffer), std::end(buffer), value);
  out.append(buffer, static_cast<std::size_t>(end - buffer));
}

}  // namespace lpd::protocol
