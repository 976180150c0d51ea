#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/logs/log_cap_rules.h"

namespace lpd::daemon {

// a run's output log (runs/<id>/output.log) is written by
// the command itself, straight into lpd's state directory (lpd relays
// nothing: the monitor hands the command the file as its stdout and
// stderr). `lpctl run -- yes` wrote 3.8 GB there in 3 s; on a shared host
// any user could fill the state file system and every user's results would
// then fail to be written. The helper log cap's rules (log_cap_rules.h)
// bound it: these are what is particular to run output.

/// Which of a run's two output logs: the command's stdout (runs/<id>/output.log,
/// its stderr too unless the run keeps stderr apart) or its stderr
/// (runs/<id>/stderr.log, for a run started with separate_stderr).
enum class OutputStream { kStdout, kStderr };

/// "stdout" or "stderr": the `stream` field of run.output and run.output_dropped.
std::string_view to_string(OutputStream stream);

/// The file name of `stream`'s log in the run's directory: "output.log" or "stderr.log".
std::string_view output_file_name(OutputStream stream);

/// How much of the state directory run outputs may take (`lpd start
/// --run-output-max`, `--run-outputs-per-user-max`).
struct RunOutputLimits {
  static constexpr std::uint64_t kDefaultPerRun = 64ull * 1024 * 1024;
  static constexpr std::uint64_t kDefaultPerOwner = 1024ull * 1024 * 1024;
  /// At most this much of a run's first output is kept past a cut.
  static constexpr std::uint64_t kMaxHead = 1024 * 1024;

  std::uint64_t per_run = kDefaultPerRun;      // disk use of one run's output; 0 = no limit
  std::uint64_t per_owner = kDefaultPerOwner;  // of all of a uid's kept runs' outputs; 0 = no limit
};

/// The caps plan_log_freeing applies to run outputs: `limits`, and a kept
/// head of an eighth of the per-run cap (at most kMaxHead, in whole
/// `block`s): pytest prints its collection errors first and its summary
/// last, so a cut keeps both ends and frees the middle.
LogCaps run_output_caps(const RunOutputLimits& limits, std::uint64_t block);

/// The line lpd shows where `bytes` of a run's output were dropped: before
/// the output that follows the gap, whoever reads it (a live follower
/// that fell behind, a replay, the JUnit's excerpt).
std::string dropped_output_note(std::uint64_t bytes);

/// OutputGaps tells a reader of a run's output (run.attach) where it jumped
/// over what the cap freed: the chunks it is handed, in order, are checked
/// against the offset where the previous one ended.
class OutputGaps {
 public:
  /// `offset`: where the reader starts (what it has seen already ends there).
  explicit OutputGaps(std::uint64_t offset) : expected_(offset) {}

  /// What to show before the chunk `bytes` that ends at `end`: "" when it
  /// follows on from the last; else dropped_output_note of the gap, on a
  /// line of its own. Then the chunk counts as shown. A chunk before the
  /// expected offset (a log emptied where holes cannot be punched: the log
  /// says so itself) is no gap.
  std::string before(std::string_view bytes, std::uint64_t end);
  /// Bytes skipped over so far.
  std::uint64_t skipped() const { return skipped_; }

 private:
  std::uint64_t expected_;
  bool at_line_start_ = true;  // unknown when resuming: a note then starts where the reader is
  std::uint64_t skipped_ = 0;
};

/// The first line of a run output's excerpt (a failed command's JUnit
/// <system-out>) when it is not the whole output: `not_shown` bytes before
/// it are left out, `dropped` of them freed by the cap. "" when both are 0.
std::string excerpt_note(std::uint64_t not_shown, std::uint64_t dropped);

}  // namespace lpd::daemon
