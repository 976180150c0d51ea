#include "daemon/pauses/pause_registry.h"

#include <algorithm>

#include "protocol/error.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

Pause& PauseRegistry::add(Pause pause, bool* existed) {
  auto it = pauses_.find(pause.pause_id);
  if (existed) *existed = it != pauses_.end();
  if (it != pauses_.end()) return it->second;
  const std::string id = pause.pause_id;
  return pauses_.emplace(id, std::move(pause)).first->second;
}

Pause* PauseRegistry::find(std::string_view pause_id) {
  auto it = pauses_.find(pause_id);
  return it == pauses_.end() ? nullptr : &it->second;
}

Pause& PauseRegistry::lookup(std::string_view id_or_prefix) {
  if (id_or_prefix.empty()) throw Error(ErrorCode::kBadRequest, "pause id must not be empty");
  if (auto* exact = find(id_or_prefix)) return *exact;
  Pause* match = nullptr;
  for (auto it = pauses_.lower_bound(id_or_prefix); it != pauses_.end(); ++it) {
    if (it->first.compare(0, id_or_prefix.size(), id_or_prefix) != 0) break;
    if (match) {
      throw Error(ErrorCode::kBadRequest,
                  "pause id prefix \"" + std::string(id_or_prefix) + "\" matches several pauses; give more of it");
    }
    match = &it->second;
  }
  if (!match) throw Error(ErrorCode::kNotFound, "no pause \"" + std::string(id_or_prefix) + "\"");
  return *match;
}

Pause& PauseRegistry::resume(std::string_view pause_id, const ResumeRequest& request, double now) {
  Pause& pause = lookup(pause_id);
  switch (pause.status) {
    case PauseStatus::kPending: break;
    case PauseStatus::kStale:
      throw Error(ErrorCode::kConflict, "pause " + pause.pause_id +
                                            " is stale: its test process went away while it waited");
    case PauseStatus::kResumed:
      throw Error(ErrorCode::kConflict, "pause " + pause.pause_id + " was already resumed");
    case PauseStatus::kTimedOut:
      throw Error(ErrorCode::kConflict, "pause " + pause.pause_id + " timed out; the test went on");
  }
  Decision decision;
  if (pause.kind == PauseKind::kFailure) {
    if (request.has_result || request.reason)
      throw Error(ErrorCode::kBadRequest, "pause " + pause.pause_id +
                                              " is a failure pause: it takes failure_reason only, not result or reason");
    decision.failure_reason = request.failure_reason.value_or("");
  } else {
    if (request.failure_reason)
      throw Error(ErrorCode::kBadRequest, "pause " + pause.pause_id +
                                              " is a checkpoint: it takes result and reason, not failure_reason");
    if (!request.has_result)
      throw Error(ErrorCode::kBadRequest,
                  "pause " + pause.pause_id + " is a checkpoint: say its result (true, false or none)");
    decision.result = request.result;
    decision.reason = request.reason.value_or("");
  }
  pause.decision = std::move(decision);
  pause.status = PauseStatus::kResumed;
  pause.resolved_at = now;
  return pause;
}

Pause* PauseRegistry::resolve(std::string_view pause_id, PauseStatus status, double now) {
  Pause* pause = find(pause_id);
  if (!pause || pause->status != PauseStatus::kPending) return nullptr;
  pause->status = status;
  pause->resolved_at = now;
  return pause;
}

bool PauseRegistry::time_out(std::string_view pause_id, double now) {
  return resolve(pause_id, PauseStatus::kTimedOut, now) != nullptr;
}

bool PauseRegistry::mark_stale(std::string_view pause_id, double now) {
  return resolve(pause_id, PauseStatus::kStale, now) != nullptr;
}

std::vector<const Pause*> PauseRegistry::list(bool include_resolved, std::string_view run_id) const {
  std::vector<const Pause*> out;
  for (const auto& [id, pause] : pauses_) {
    if (!include_resolved && pause.status != PauseStatus::kPending) continue;
    if (!run_id.empty() && pause.run_id != run_id) continue;
    out.push_back(&pause);
  }
  // Oldest first; the id breaks a tie, so pause.list's cursor is exact.
  std::sort(out.begin(), out.end(), [](const Pause* a, const Pause* b) {
    return std::pair(a->created_at, a->pause_id) < std::pair(b->created_at, b->pause_id);
  });
  return out;
}

std::size_t PauseRegistry::pending_count() const {
  return static_cast<std::size_t>(std::count_if(pauses_.begin(), pauses_.end(), [](const auto& entry) {
    return entry.second.status == PauseStatus::kPending;
  }));
}

std::size_t PauseRegistry::forget_runs(const std::set<std::string>& run_ids) {
  return std::erase_if(pauses_, [&run_ids](const auto& entry) {
    return entry.second.status != PauseStatus::kPending && run_ids.count(entry.second.run_id) != 0;
  });
}

}  // namespace lpd::daemon
