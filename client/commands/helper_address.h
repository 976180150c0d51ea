#pragma once

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/connection.h"
#include "client/usage_error.h"
#include "protocol/error.h"

namespace lpd::client {

/// The files that make a directory a project root for lpctl's helper
/// scopes: pytest's own rootdir markers, setup.py, and a git checkout.
inline constexpr const char* kProjectMarkers[] = {"pytest.ini", "pyproject.toml", "setup.cfg",
                                                  "tox.ini",    "setup.py",       ".git"};

/// Whether `path` exists (a file, a directory, or a link to either).
inline bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

/// The project `dir` (absolute) belongs to, as pytest-xprocess scopes
/// helpers by pytest's rootdir: the nearest ancestor of `dir` (itself
/// first) holding one of kProjectMarkers; `dir` itself when none does.
/// `exists` tests a path (a fake in tests).
inline std::string project_scope(const std::string& dir,
                                 const std::function<bool(const std::string&)>& exists = path_exists) {
  std::string at = dir;
  while (at.size() > 1 && at.back() == '/') at.pop_back();
  for (;;) {
    for (const char* marker : kProjectMarkers)
      if (exists((at == "/" ? "" : at) + "/" + marker)) return at;
    if (at == "/" || at.empty()) break;
    const auto slash = at.rfind('/');
    at = slash == 0 ? "/" : at.substr(0, slash);
  }
  std::string out = dir;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

/// How `lpctl ps` shows a scope to someone in `cwd`: "-" for the global
/// scope, "." for cwd itself, a relative path inside cwd, else the whole path.
inline std::string shown_scope(const std::string& scope, const std::string& cwd) {
  if (scope.empty()) return "-";
  if (scope == cwd) return ".";
  const std::string prefix = cwd == "/" ? "/" : cwd + "/";
  if (scope.size() > prefix.size() && scope.compare(0, prefix.size(), prefix) == 0) return scope.substr(prefix.size());
  return scope;
}

/// The fields naming a helper from what the user typed: a full name
/// ("<scope>::<name>") as `full_name`, else `name` in `scope` (none: the
/// daemon's rule for clients without scopes).
inline nlohmann::json address_fields(const std::string& typed, const std::optional<std::string>& scope) {
  if (typed.find("::") != std::string::npos) return {{"full_name", typed}};
  nlohmann::json fields = {{"name", typed}};
  if (scope) fields["scope"] = *scope;
  return fields;
}

/// lpctl's working directory ("/" when it cannot tell).
inline std::string current_directory() {
  char buffer[PATH_MAX];
  return ::getcwd(buffer, sizeof(buffer)) ? std::string(buffer) : std::string("/");
}

/// Sends `op` about the helper the user typed: a full name as it is; a
/// name in `scope` when given (--scope); otherwise in the current project
/// first and, when that has no helper of the name, the daemon's rule for a
/// name without scope (the global scope's, else the only one of the name).
inline json request_helper(Connection& connection, std::string_view op, const std::string& typed,
                           const std::optional<std::string>& scope, json extra,
                           std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
  auto fields_for = [&](const std::optional<std::string>& in) {
    json fields = address_fields(typed, in);
    for (auto& [k, v] : extra.items()) fields[k] = v;
    return fields;
  };
  if (scope || typed.find("::") != std::string::npos) return connection.request(op, fields_for(scope), timeout);
  try {
    return connection.request(op, fields_for(project_scope(current_directory())), timeout);
  } catch (const protocol::Error& e) {
    if (e.code() != protocol::ErrorCode::kNotFound) throw;
    try {
      return connection.request(op, fields_for(std::nullopt), timeout);
    } catch (const protocol::Error& again) {
      if (again.code() == protocol::ErrorCode::kNotFound) throw e;  // the project's answer says more
      throw;
    }
  }
}

// -- --owner USER|UID ----------------------------------------------------

/// The uid `text` names for --owner: all digits is a uid; else a user name
/// looked up in the user database. Throws UsageError for an unknown name.
inline uid_t parse_owner(const std::string& text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() <= 10) {
    const unsigned long long uid = std::stoull(text);
    if (uid < static_cast<unsigned long long>(static_cast<uid_t>(-1))) return static_cast<uid_t>(uid);
  }
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwnam_r(text.c_str(), &pw, buffer.data(), buffer.size(), &found) != 0 || !found)
    throw UsageError("--owner: no user named \"" + text + "\" (give a user name or a uid)");
  return pw.pw_uid;
}

/// How lpctl shows an owner: the user's name, or the uid when the user
/// database has no name for it (a deleted user, another container's uid).
inline std::string owner_label(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) != 0 || !found) return std::to_string(uid);
  return pw.pw_name;
}

/// `fields` with "owner" added when --owner was given.
inline json with_owner(json fields, const std::optional<std::string>& owner) {
  if (owner) fields["owner"] = parse_owner(*owner);
  return fields;
}

}  // namespace lpd::client
