#include "daemon/reports/xml_text.h"

#include <cstdio>

#include "protocol/utf8.h"

namespace lpd::daemon {
namespace {

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
    const std::size_t length = protocol::utf8_sequence_length(text, i, &code);
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
