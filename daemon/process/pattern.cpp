#include "daemon/process/pattern.h"

#include <boost/regex/icu.hpp>

#include "protocol/error.h"

namespace lpd::daemon {

struct Pattern::Compiled {
  boost::u32regex regex;
};

std::u32string decode_utf8_lossy(std::string_view bytes) {
  constexpr char32_t kReplacement = 0xFFFD;
  std::u32string out;
  out.reserve(bytes.size());
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char lead = p[i];
    if (lead < 0x80) {
      out.push_back(lead);
      ++i;
      continue;
    }
    std::size_t length = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2, cp = lead & 0x1F, min = 0x80;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3, cp = lead & 0x0F, min = 0x800;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4, cp = lead & 0x07, min = 0x10000;
    }
    bool valid = length > 0 && i + length <= n;
    for (std::size_t k = 1; valid && k < length; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) {
        valid = false;
      } else {
        cp = (cp << 6) | (p[i + k] & 0x3F);
      }
    }
    if (valid && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) valid = false;
    if (valid) {
      out.push_back(cp);
      i += length;
    } else {
      out.push_back(kReplacement);  // this byte only; the next is looked at afresh
      ++i;
    }
  }
  return out;
}

std::string python_to_perl_syntax(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  bool in_class = false;
  for (std::size_t i = 0; i < source.size(); ++i) {
    const char c = source[i];
    if (c == '\\' && i + 1 < source.size()) {
      out += source.substr(i, 2);
      ++i;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out.push_back(c);
      continue;
    }
    if (c == '[') {
      in_class = true;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal member, not the end.
      if (i + 1 < source.size() && source[i + 1] == '^') out.push_back(source[++i]);
      if (i + 1 < source.size() && source[i + 1] == ']') out.push_back(source[++i]);
      continue;
    }
    if (source.compare(i, 4, "(?P<") == 0) {
      out += "(?<";
      i += 3;
      continue;
    }
    if (source.compare(i, 4, "(?P=") == 0) {
      const auto close = source.find(')', i);
      if (close != std::string::npos) {
        out += "\\k<" + source.substr(i + 4, close - i - 4) + ">";
        i = close;
        continue;
      }
    }
    out.push_back(c);
  }
  return out;
}

Pattern Pattern::compile(const std::string& source) {
  if (source.empty())
    throw protocol::Error(protocol::ErrorCode::kBadRequest, "the pattern is empty; it would match any line");
  // Decoded the same lossy way as lines, so an invalid byte in a pattern
  // (JSON text cannot carry one, a state file might) is U+FFFD, not a throw.
  const std::u32string perl = decode_utf8_lossy(python_to_perl_syntax(source));
  try {
    auto compiled = std::make_shared<Compiled>(Compiled{boost::make_u32regex(perl.begin(), perl.end(), boost::regex::perl)});
    return Pattern(source, std::move(compiled));
  } catch (const boost::regex_error& e) {
    throw protocol::Error(protocol::ErrorCode::kBadRequest,
                          "invalid pattern \"" + source + "\": " + e.what() + " (at offset " +
                              std::to_string(e.position()) + ")");
  } catch (const std::exception& e) {
    throw protocol::Error(protocol::ErrorCode::kBadRequest, "invalid pattern \"" + source + "\": " + e.what());
  }
}

bool Pattern::matches(std::string_view line) const {
  const std::u32string text = decode_utf8_lossy(line);
  try {
    return boost::u32regex_search(text.begin(), text.end(), compiled_->regex);
  } catch (const std::runtime_error&) {
    // Boost gives up on catastrophic backtracking instead of hanging the
    // daemon; such a line simply does not match.
    return false;
  }
}

}  // namespace lpd::daemon
