#include "daemon/processes/process_name.h"

#include <string>
#include <vector>

#include <fmt/format.h>

#include "protocol/error.h"

namespace lpd::daemon {
namespace {

using protocol::Error;
using protocol::ErrorCode;

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
  throw Error(ErrorCode::kBadRequest,
              "invalid process name \"" + shown +
                  "\": a name is 1 to 64 characters from [A-Za-z0-9._-] and starts with a letter or digit");
}

std::string normalize_scope(std::string_view scope) {
  if (scope.empty()) return {};
  const std::string shown(scope.substr(0, 80));
  if (scope.size() > kMaxScopeBytes)
    throw Error(ErrorCode::kBadRequest, "scope \"" + shown + "...\" is longer than 4096 bytes");
  if (scope.front() != '/')
    throw Error(ErrorCode::kBadRequest, "scope \"" + shown +
                                            "\" is relative: a scope is an absolute directory (the project's "
                                            "root, as pytest's rootdir), or \"\" for the global scope");
  for (char c : scope)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      throw Error(ErrorCode::kBadRequest, "scope \"" + shown + "\" holds a control character");
  // one project, one key. Lexical, as Python's
  // os.path.normpath: "//" and "." go, ".." drops the part before it
  // ("/.." is "/"), a trailing "/" goes. The scope is a key, never opened,
  // so no link is followed (a link to the project is another scope).
  std::vector<std::string_view> parts;
  std::size_t at = 0;
  while (at < scope.size()) {
    const std::size_t slash = scope.find('/', at);
    const std::size_t end = slash == std::string_view::npos ? scope.size() : slash;
    const std::string_view part = scope.substr(at, end - at);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    at = end + 1;
  }
  if (parts.empty()) return "/";
  std::string normal;
  normal.reserve(scope.size());
  for (const auto part : parts) {
    normal += '/';
    normal += part;
  }
  return normal;
}

std::string ProcessKey::full_name() const { return scope.empty() ? name : scope + "::" + name; }

std::pair<std::string, std::string> split_full_name(std::string_view full_name) {
  const auto cut = full_name.rfind("::");
  if (cut == std::string_view::npos) {
    require_valid_process_name(full_name);
    return {std::string(), std::string(full_name)};
  }
  const std::string_view name = full_name.substr(cut + 2);
  require_valid_process_name(name);
  std::string scope = normalize_scope(full_name.substr(0, cut));
  if (scope.empty())
    throw Error(ErrorCode::kBadRequest, "full name \"" + std::string(full_name.substr(0, 80)) +
                                            "\" has an empty scope before \"::\"; write just the name");
  return {std::move(scope), std::string(name)};
}

std::uint64_t fnv1a64(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

std::string process_file_stem(const ProcessKey& key) {
  std::string stem = key.name + ".u" + std::to_string(key.owner);
  if (!key.scope.empty()) stem += fmt::format(".{:016x}", fnv1a64(key.scope));
  return stem;
}

std::string process_log_name(std::string_view stem, std::uint64_t start) {
  return "logs/" + std::string(stem) + "." + std::to_string(start) + ".log";
}

}  // namespace lpd::daemon
