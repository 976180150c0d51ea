#include "shim/native/src/crash_line.h"

#include <cstdint>

#include "protocol/utf8.h"

namespace lpd::shim {
namespace {

std::size_t append(char* out, std::size_t capacity, std::size_t at, const char* bytes, std::size_t n) {
  if (at + n > capacity) return SIZE_MAX;
  for (std::size_t k = 0; k < n; ++k) out[at + k] = bytes[k];
  return at + n;
}

}  // namespace

std::size_t json_escape_into(std::string_view text, char* out, std::size_t capacity) {
  if (capacity == 0) return 0;
  const std::size_t room = capacity - 1;  // keep one byte for the NUL
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t n = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    char buf[8];
    std::size_t len = 0;
    std::size_t consumed = 1;
    if (c == '"' || c == '\\') {
      buf[0] = '\\', buf[1] = static_cast<char>(c), len = 2;
    } else if (c == '\n') {
      buf[0] = '\\', buf[1] = 'n', len = 2;
    } else if (c == '\t') {
      buf[0] = '\\', buf[1] = 't', len = 2;
    } else if (c == '\r') {
      buf[0] = '\\', buf[1] = 'r', len = 2;
    } else if (c < 0x20 || c == 0x7f) {
      const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
      for (std::size_t k = 0; k < 6; ++k) buf[k] = esc[k];
      len = 6;
    } else if (c < 0x80) {
      buf[0] = static_cast<char>(c), len = 1;
    } else {
      const std::size_t seq = protocol::utf8_sequence_length(text, i);
      if (seq == 0) {
        buf[0] = '\xef', buf[1] = '\xbf', buf[2] = '\xbd', len = 3;  // U+FFFD
      } else {
        for (std::size_t k = 0; k < seq; ++k) buf[k] = text[i + k];
        len = seq;
        consumed = seq;
      }
    }
    if (n + len > room) break;
    for (std::size_t k = 0; k < len; ++k) out[n + k] = buf[k];
    n += len;
    i += consumed;
  }
  out[n] = '\0';
  return n;
}

std::size_t format_crash_line(int signal, const char* escaped_nodeid, std::size_t nodeid_length, char* out,
                              std::size_t capacity) {
  static constexpr char kHead[] = "\n{\"op\":\"crash.notice\",\"signal\":";
  static constexpr char kMiddle[] = ",\"nodeid\":\"";
  static constexpr char kTail[] = "\"}\n";
  char digits[16];
  std::size_t ndigits = 0;
  unsigned value = signal < 0 ? 0u : static_cast<unsigned>(signal);
  do {
    digits[sizeof(digits) - 1 - ndigits++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0 && ndigits < sizeof(digits));
  std::size_t at = 0;
  at = append(out, capacity, at, kHead, sizeof(kHead) - 1);
  if (at != SIZE_MAX) at = append(out, capacity, at, digits + sizeof(digits) - ndigits, ndigits);
  if (at != SIZE_MAX) at = append(out, capacity, at, kMiddle, sizeof(kMiddle) - 1);
  if (at != SIZE_MAX) at = append(out, capacity, at, escaped_nodeid, nodeid_length);
  if (at != SIZE_MAX) at = append(out, capacity, at, kTail, sizeof(kTail) - 1);
  return at == SIZE_MAX ? 0 : at;
}

}  // namespace lpd::shim
