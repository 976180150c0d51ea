#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <sys/types.h>

#include <nlohmann/json.hpp>

namespace lpd::daemon {

/// A failure pause waits for an external failure reason; a checkpoint pause
/// waits for a decision (true / false / none) and an optional reason.
enum class PauseKind { kFailure, kCheckpoint };

/// pending until exactly one of: resumed from outside, its timeout passed,
/// or its test process went away while it waited (stale).
enum class PauseStatus { kPending, kResumed, kTimedOut, kStale };

std::string_view to_string(PauseKind kind);
std::string_view to_string(PauseStatus status);
std::optional<PauseKind> pause_kind_from_string(std::string_view text);

/// What a person or script decided when resuming.
struct Decision {
  std::optional<bool> result;  // checkpoint: nullopt means "none"
  std::string reason;          // checkpoint
  std::string failure_reason;  // failure pause: appended to the test's report
};

/// Pause is one test blocked before teardown (or at a checkpoint) until it
/// is resumed. Its JSON form keeps pytest-live-pause's field names, so tools
/// reading that plugin's pause files read ours.
struct Pause {
  std::string pause_id;
  std::string run_id;
  PauseKind kind = PauseKind::kFailure;
  PauseStatus status = PauseStatus::kPending;
  std::string nodeid;
  std::string task;              // checkpoint only
  std::string original_failure;  // failure only: the short failure text
  std::string worker_id;
  std::string hostname;
  std::string cwd;
  pid_t pid = 0;                  // the test process, from the kernel (SO_PEERCRED)
  std::uint64_t pid_start_time = 0;  // /proc start time, so a reused pid is not mistaken for it
  uid_t owner = static_cast<uid_t>(-1);
  double timeout = 0;     // seconds
  double created_at = 0;  // seconds since the epoch
  double resolved_at = 0;
  Decision decision;

  double deadline() const { return created_at + timeout; }
  nlohmann::json to_json() const;
  /// Reads a stored record back. Never throws: a missing or mistyped field,
  /// or an integer out of its range, reads as its default (a record that is
  /// not an object reads as all defaults, and restore skips it by its id).
  static Pause from_json(const nlohmann::json& j);
  /// The reply a waiting shim receives when the pause ends.
  nlohmann::json outcome_json() const;

 private:
  /// A resumed pause's decision fields, the same in the record and the reply.
  void add_decision(nlohmann::json& j) const;
};

}  // namespace lpd::daemon
