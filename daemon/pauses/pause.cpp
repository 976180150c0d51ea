#include "daemon/pauses/pause.h"
#include "daemon/core/record_field.h"

#include <type_traits>
#include <utility>

namespace lpd::daemon {

using nlohmann::json;

std::string_view to_string(PauseKind kind) { return kind == PauseKind::kFailure ? "failure" : "checkpoint"; }

std::string_view to_string(PauseStatus status) {
  switch (status) {
    case PauseStatus::kPending: return "pending";
    case PauseStatus::kResumed: return "resumed";
    case PauseStatus::kTimedOut: return "timed_out";
    case PauseStatus::kStale: return "stale";
  }
  return "pending";
}

std::optional<PauseKind> pause_kind_from_string(std::string_view text) {
  if (text == "failure") return PauseKind::kFailure;
  if (text == "checkpoint") return PauseKind::kCheckpoint;
  return std::nullopt;
}

namespace {

PauseStatus status_from_string(std::string_view text) {
  for (auto s : {PauseStatus::kPending, PauseStatus::kResumed, PauseStatus::kTimedOut, PauseStatus::kStale})
    if (to_string(s) == text) return s;
  return PauseStatus::kStale;
}

json result_json(const std::optional<bool>& result) { return result ? json(*result) : json(nullptr); }
}  // namespace

json Pause::to_json() const {
  json j = {{"pause_id", pause_id},
            {"run_id", run_id},
            {"nodeid", nodeid},
            {"timeout", timeout},
            {"original_failure", original_failure},
            {"status", to_string(status)},
            {"created_at", created_at},
            {"pid", pid},
            {"hostname", hostname},
            {"cwd", cwd},
            {"worker_id", worker_id},
            {"kind", to_string(kind)},
            {"task", task},
            {"owner_uid", owner},
            {"pid_start_time", pid_start_time}};
  if (status != PauseStatus::kPending) j["resolved_at"] = resolved_at;
  add_decision(j);
  return j;
}

void Pause::add_decision(json& j) const {
  if (status != PauseStatus::kResumed) return;
  if (kind == PauseKind::kCheckpoint) {
    j["result"] = result_json(decision.result);
    j["reason"] = decision.reason;
  } else {
    j["failure_reason"] = decision.failure_reason;
  }
}

Pause Pause::from_json(const json& j) {
  Pause p;
  p.pause_id = field_or<std::string>(j, "pause_id", "");
  p.run_id = field_or<std::string>(j, "run_id", "");
  p.kind = pause_kind_from_string(field_or<std::string>(j, "kind", "failure")).value_or(PauseKind::kFailure);
  p.status = status_from_string(field_or<std::string>(j, "status", "stale"));
  p.nodeid = field_or<std::string>(j, "nodeid", "");
  p.task = field_or<std::string>(j, "task", "");
  p.original_failure = field_or<std::string>(j, "original_failure", "");
  p.worker_id = field_or<std::string>(j, "worker_id", "");
  p.hostname = field_or<std::string>(j, "hostname", "");
  p.cwd = field_or<std::string>(j, "cwd", "");
  p.pid = field_or<pid_t>(j, "pid", 0);
  p.pid_start_time = field_or<std::uint64_t>(j, "pid_start_time", 0);
  p.owner = field_or<uid_t>(j, "owner_uid", static_cast<uid_t>(-1));
  p.timeout = field_or<double>(j, "timeout", 0.0);
  p.created_at = field_or<double>(j, "created_at", 0.0);
  p.resolved_at = field_or<double>(j, "resolved_at", 0.0);
  if (auto it = j.find("result"); it != j.end() && it->is_boolean()) p.decision.result = it->get<bool>();
  p.decision.reason = field_or<std::string>(j, "reason", "");
  p.decision.failure_reason = field_or<std::string>(j, "failure_reason", "");
  return p;
}

json Pause::outcome_json() const {
  json j = {{"pause_id", pause_id}, {"status", to_string(status)}, {"kind", to_string(kind)}};
  add_decision(j);
  return j;
}

}  // namespace lpd::daemon
