#include "daemon/core/bounded_field.h"

#include "protocol/error.h"
#include "protocol/utf8.h"

namespace lpd::daemon {

std::string bounded_text(std::string text, std::size_t most_bytes) {
  if (text.size() <= most_bytes) return text;
  const std::size_t size = text.size();
  text.resize(most_bytes);
  text.resize(most_bytes - protocol::utf8_cut_suffix(text));
  return text + " ... (" + std::to_string(size) + " bytes, not kept)";
}

void check_cwd_length(const std::string& cwd) {
  if (cwd.size() > kMaxCwdBytes)
    throw protocol::Error(protocol::ErrorCode::kBadRequest,
                          "field \"cwd\" is " + std::to_string(cwd.size()) + " bytes long; a path may have at most " +
                              std::to_string(kMaxCwdBytes) + " (PATH_MAX)");
}

void check_argv_size(const std::vector<std::string>& argv, std::size_t most_bytes, const char* what) {
  std::size_t bytes = 0;
  for (const auto& arg : argv) bytes += arg.size() + 1;
  if (bytes > most_bytes)
    throw protocol::Error(protocol::ErrorCode::kBadRequest, "field \"argv\" is " + std::to_string(bytes) +
                                                                " bytes; " + what + " arguments may have at most " +
                                                                std::to_string(most_bytes));
}

}  // namespace lpd::daemon
