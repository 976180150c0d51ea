#include "daemon/process/pattern.h"

#include "protocol/error.h"

namespace lpd::daemon {

Pattern Pattern::compile(const std::string& source) {
  if (source.empty())
    throw protocol::Error(protocol::ErrorCode::kBadRequest, "the pattern is empty; it would match any line");
  try {
    return Pattern(source, boost::regex(source, boost::regex::perl));
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
