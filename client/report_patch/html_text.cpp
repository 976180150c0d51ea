#include "client/report_patch/html_text.h"

#include <cstdint>

namespace lpd::client::report_patch {
namespace {

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;  // as the HTML spec does
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// The reference starting at text[0] == '&': its length and what it stands
/// for, or 0 when it is none we decode.
std::size_t decode_reference(std::string_view text, std::string& out) {
  const auto semi = text.find(';');
  if (semi == std::string_view::npos || semi > 12) return 0;
  const std::string_view body = text.substr(1, semi - 1);
  if (body == "amp") out += '&';
  else if (body == "lt") out += '<';
  else if (body == "gt") out += '>';
  else if (body == "quot") out += '"';
  else if (body == "apos") out += '\'';
  else if (body.size() >= 2 && body[0] == '#') {
    const bool hex = body[1] == 'x' || body[1] == 'X';
    const std::string_view digits = body.substr(hex ? 2 : 1);
    if (digits.empty()) return 0;
    std::uint32_t cp = 0;
    for (char ch : digits) {
      int v = -1;
      if (ch >= '0' && ch <= '9') v = ch - '0';
      else if (hex && ch >= 'a' && ch <= 'f') v = ch - 'a' + 10;
      else if (hex && ch >= 'A' && ch <= 'F') v = ch - 'A' + 10;
      if (v < 0) return 0;
      cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(v);
      if (cp > 0x10FFFF) cp = 0x110000;  // stays out of range, no overflow
    }
    append_utf8(out, cp);
  } else {
    return 0;
  }
  return semi + 1;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char ch : text) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += ch;
    }
  }
  return out;
}

std::string html_unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == '&') {
      if (const std::size_t n = decode_reference(text.substr(i), out)) {
        i += n;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

}  // namespace lpd::client::report_patch
