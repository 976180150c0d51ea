#pragma once

#include <optional>

#include <nlohmann/json.hpp>

#include "daemon/process/process_registry.h"

namespace lpd::daemon {

/// The record as procs/NAME.json stores it and as replies and events carry
/// it: one shape everywhere, so `lpctl ps --json` and the file agree.
nlohmann::json process_to_json(const SupervisedProcess& record, double now);

/// Reads a stored record back; nullopt when a field is missing or mistyped
/// or the name is not a valid process name (a hand-edited file).
std::optional<SupervisedProcess> process_from_json(const nlohmann::json& value);

}  // namespace lpd::daemon
