#include "daemon/reports/xml_text.h"

#include <cstdio>

namespace lpd::daemon {
namespace {

/// The length of the UTF-8 sequence starting at text[i] and its code
/// point, or 0 when the bytes there are not valid UTF-8 (overlong forms,
/// surrogates and values past U+10FFFF included).
std::size_t decode(std::string_view text, std::size_t i, char32_t& code) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t length;
  char32_t min;
  if (lead < 0x80) {
    code = lead;
    return 1;
  } else if ((lead & 0xE0) == 0xC0) {
    length = 2, code = lead & 0x1F, min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, code = lead & 0x0F, min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, code = lead & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

/// The characters pytest's bin_xml_escape leaves as they are.
bool kept_by_pytest(char32_t c) {
  return c == 0x09 || c == 0x0A || c == 0x0D || (c >= 0x20 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD);
}

void append_mark(std::string& out, unsigned long value) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), value <= 0xFF ? "#x%02lX" : "#x%04lX", value);
  out += buf;
}

/// Printable ASCII with nothing to escape: most nodeids, names and
/// messages, which then are copied as they are (one pass, no second copy).
bool plain(std::string_view text) {
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7E || c == '&' || c == '<' || c == '>' || c == '"') return false;
  }
  return true;
}

std::string escaped(std::string_view text, bool attribute) {
  if (plain(text)) return std::string(text);
  const std::string visible = visible_xml_chars(text);
  std::string out;
  out.reserve(visible.size() + visible.size() / 8);
  for (char c : visible) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': attribute ? out += "&quot;" : out += c; break;
      case '\n': attribute ? out += "&#10;" : out += c; break;
      case '\r': attribute ? out += "&#13;" : out += c; break;
      case '\t': attribute ? out += "&#09;" : out += c; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string visible_xml_chars(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    char32_t code = 0;
    const std::size_t length = decode(text, i, code);
    if (length == 0) {
      append_mark(out, static_cast<unsigned char>(text[i]));
      ++i;
    } else if (!kept_by_pytest(code)) {
      append_mark(out, code);
      i += length;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  return out;
}

std::string xml_attribute(std::string_view text) { return escaped(text, true); }

std::string xml_text(std::string_view text) { return escaped(text, false); }

}  // namespace lpd::daemon
