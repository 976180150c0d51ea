#pragma once

#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

#include "daemon/processes/process_registry.h"

namespace lpd::daemon {

/// Bounds of a record's kept logs (`keep_logs`) and of `linger`, for
/// requests and for records read back.
inline constexpr std::uint64_t kDefaultKeptLogs = 5;
inline constexpr std::uint64_t kMaxKeptLogs = 100;
inline constexpr double kMaxLingerSeconds = 24 * 3600;

/// The record as procs/STEM.json stores it and as replies and events carry
/// it: one shape everywhere, so `lpctl ps --json` and the file agree.
nlohmann::json process_to_json(const SupervisedProcess& record, double now);

/// How many processes a record lists as left running by its tree (more are
/// killed all the same, with the cgroup).
constexpr std::size_t kMaxLeftRunning = 100;

/// Reads a stored record back; nullopt when a field is missing or mistyped,
/// the name is not a valid process name or the scope not a normalized one
/// (a hand-edited file). A record without `scope` (written before scopes)
/// is in the global scope "", one without `logs` keeps its log_path.
std::optional<SupervisedProcess> process_from_json(const nlohmann::json& value);

}  // namespace lpd::daemon
