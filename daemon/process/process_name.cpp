#include "daemon/process/process_name.h"

#include <string>

#include "protocol/error.h"

namespace lpd::daemon {
namespace {

constexpr std::size_t kMaxNameLength = 64;

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

}  // namespace

bool is_valid_process_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || !is_alnum(name.front())) return false;
  for (char c : name)
    if (!is_alnum(c) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

void require_valid_process_name(std::string_view name) {
  if (is_valid_process_name(name)) return;
  // Quote the name as JSON would not help a human; cut it so a huge name
  // does not make a huge error line.
  std::string shown(name.substr(0, 80));
  throw protocol::Error(protocol::ErrorCode::kBadRequest,
                        "invalid process name \"" + shown +
                            "\": a name is 1 to 64 characters from [A-Za-z0-9._-] and starts with a letter or digit");
}

}  // namespace lpd::daemon
