#include "daemon/process/pattern.h"

#include "protocol/error.h"

namespace lpd::daemon {

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
  try {
    return Pattern(source, boost::regex(python_to_perl_syntax(source), boost::regex::perl));
  } catch (const boost::regex_error& e) {
    throw protocol::Error(protocol::ErrorCode::kBadRequest,
                          "invalid pattern \"" + source + "\": " + e.what() + " (at offset " +
                              std::to_string(e.position()) + ")");
  }
}

bool Pattern::matches(std::string_view line) const {
  try {
    return boost::regex_search(line.begin(), line.end(), regex_);
  } catch (const std::runtime_error&) {
    // Boost gives up on catastrophic backtracking instead of hanging the
    // daemon; such a line simply does not match.
    return false;
  }
}

}  // namespace lpd::daemon
