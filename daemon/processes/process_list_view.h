#pragma once

#include <cstddef>

#include <nlohmann/json.hpp>

// a helper's record as a list shows it (proc.list, proc.kill_all).
// A record holds what its user gave (argv, a pattern, the ready line), of
// any size: a list of thousands must stay under the protocol's 1 MiB line
// limit, so each record in it is cut to a bounded size. proc.info of one
// helper keeps everything.

namespace lpd::daemon {

/// Bytes of argv a list shows per record, all elements together.
inline constexpr std::size_t kListArgvBytes = 1024;
/// Bytes of each other free text (pattern, ready_line, cwd, failure).
inline constexpr std::size_t kListTextBytes = 1024;
/// left_running entries (and logs) a list shows per record.
inline constexpr std::size_t kListEntries = 10;

/// `text` cut to at most `max` bytes, never inside a UTF-8 sequence.
std::string cut_utf8(const std::string& text, std::size_t max);

/// `record` (process_to_json's form, maybe redacted) cut for a list: argv
/// to kListArgvBytes in all (then "argv_truncated": true and "argv_count",
/// the number of elements it had); pattern, ready_line, cwd and failure
/// to kListTextBytes each ("<field>_truncated": true); left_running and
/// logs to their first kListEntries ("left_running_count" / "logs_count"
/// give how many there are). Fields it does not have stay absent.
nlohmann::json list_view(nlohmann::json record);

}  // namespace lpd::daemon
