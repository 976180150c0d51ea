#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <sys/types.h>

namespace lpd::daemon {

/// A supervised process's NAME is also part of a file name under the state
/// directory (procs/STEM.json, logs/STEM.N.log), so it is restricted to
/// `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`: nothing can climb out with "..", a
/// slash or a leading dot.
bool is_valid_process_name(std::string_view name);

/// Throws protocol::Error(kBadRequest) naming the rule when `name` breaks it.
void require_valid_process_name(std::string_view name);

/// The longest scope accepted (PATH_MAX).
inline constexpr std::size_t kMaxScopeBytes = 4096;

/// A helper's scope is the project it belongs to, as pytest-xprocess scopes
/// helpers by the rootdir: "" (the global scope of old clients) or an
/// absolute directory. Returns the scope normalized lexically,
/// as os.path.normpath does (a leading "//" too): "//" and "." dropped, ".." removing the part
/// before it ("/.." is "/"), no trailing slash ("/" stays "/"), so one
/// project is one scope however it is spelled. Throws
/// protocol::Error(kBadRequest) for a relative path, a control character,
/// or more than kMaxScopeBytes. lpd never opens it: links are not followed.
std::string normalize_scope(std::string_view scope);

/// ProcessKey is what names one helper: two owners or two projects using
/// the same NAME get two helpers, and nothing of one touches the other.
struct ProcessKey {
  uid_t owner = 0;
  std::string scope;  // "" or an absolute directory (normalize_scope)
  std::string name;

  auto operator<=>(const ProcessKey&) const = default;
  /// "<scope>::<name>", or just the name in the global scope.
  std::string full_name() const;
};

/// Splits a full name at its last "::" (a NAME holds no ':', a scope may):
/// {scope, name}, with the scope normalized; a text without "::" is a name
/// in the global scope. Throws protocol::Error(kBadRequest) when either
/// part breaks its rule.
std::pair<std::string, std::string> split_full_name(std::string_view full_name);

/// The file-name stem of a helper's state file and logs:
/// NAME.u<owner> in the global scope, NAME.u<owner>.<16 hex digits of the
/// scope's FNV-1a hash> otherwise. Read from its end, a stem gives back its
/// owner, so two owners never share a file; one owner's two scopes would
/// share one only through a hash collision, which ProcessService refuses.
std::string process_file_stem(const ProcessKey& key);

/// FNV-1a, 64 bits: stable across builds and runs (unlike std::hash), so
/// stems survive an lpd upgrade.
std::uint64_t fnv1a64(std::string_view text);

/// logs/<stem>.<start>.log, relative to the state directory: a start's log
/// keeps its name for its whole life (pytest-xprocess#91: renaming the log
/// mid-suite lost it).
std::string process_log_name(std::string_view stem, std::uint64_t start);

}  // namespace lpd::daemon
