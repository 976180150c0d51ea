#pragma once
// a crash record's reason as lpctl shows it beside the
// test it names. Plain rules, no I/O.

#include <string>
#include <string_view>

namespace lpd::client {

/// `reason` without the test it repeats: lpd's reasons read "killed by
/// SIGSEGV while running NODEID (PHASE)", and lpctl already prints NODEID
/// and [PHASE] in front of it. Drops " while running NODEID" and a
/// " (PHASE)" right after it; any other reason is returned as it is.
inline std::string reason_beside_test(std::string_view reason, std::string_view nodeid, std::string_view phase) {
  if (nodeid.empty()) return std::string(reason);
  const std::string needle = " while running " + std::string(nodeid);
  const auto at = reason.find(needle);
  if (at == std::string_view::npos) return std::string(reason);
  std::string_view rest = reason.substr(at + needle.size());
  if (!rest.empty() && rest.front() != ' ') return std::string(reason);  // a longer nodeid, not this one
  if (!phase.empty()) {
    const std::string phase_note = " (" + std::string(phase) + ")";
    if (rest.substr(0, phase_note.size()) == phase_note) rest.remove_prefix(phase_note.size());
  }
  return std::string(reason.substr(0, at)) + std::string(rest);
}

}  // namespace lpd::client
