#pragma once

#include <map>
#include <set>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/pauses/pause.h"

namespace lpd::daemon {

/// The fields of a resume request, as the peer sent them (absent = nullopt).
struct ResumeRequest {
  bool has_result = false;
  std::optional<bool> result;  // with has_result: nullopt means "none"
  std::optional<std::string> reason;
  std::optional<std::string> failure_reason;
};

/// PauseRegistry holds every pause this daemon knows and the rules for how
/// a pause may change. Plain data: no sockets, no files, no clock of its own
/// (callers pass `now`), so every rule is unit-tested directly.
class PauseRegistry {
 public:
  /// Registers a new pause, or finds the one with the same id when a shim
  /// re-sends it after reconnecting (then `*existed` is set).
  Pause& add(Pause pause, bool* existed);

  Pause* find(std::string_view pause_id);
  /// Exact id, else a unique prefix. Throws not_found, or bad_request when
  /// the prefix matches several pauses.
  Pause& lookup(std::string_view id_or_prefix);

  /// Applies the resume rules; throws bad_request / conflict with a message
  /// that says exactly why. Returns the resolved pause.
  Pause& resume(std::string_view pause_id, const ResumeRequest& request, double now);
  /// Pending -> timed_out / stale; false when the pause was no longer pending.
  bool time_out(std::string_view pause_id, double now);
  bool mark_stale(std::string_view pause_id, double now);

  /// Pending pauses (all pauses with `include_resolved`), oldest first,
  /// optionally of one run.
  std::vector<const Pause*> list(bool include_resolved, std::string_view run_id = {}) const;
  std::size_t pending_count() const;
  /// Forgets the resolved pauses of these runs (retention removed them);
  /// a pending one stays until it settles. Returns how many went.
  std::size_t forget_runs(const std::set<std::string>& run_ids);

 private:
  Pause* resolve(std::string_view pause_id, PauseStatus status, double now);
  std::map<std::string, Pause, std::less<>> pauses_;
};

}  // namespace lpd::daemon
