#include "daemon/jobs/run_output_rules.h"

#include <algorithm>

namespace lpd::daemon {

LogCaps run_output_caps(const RunOutputLimits& limits, std::uint64_t block) {
  if (block == 0) block = 1;
  LogCaps caps;
  caps.per_log = limits.per_run;
  caps.per_owner = limits.per_owner;
  // An eighth: a cut keeps the head and half the cap of newest output, so
  // a log never holds more than five eighths of its cap after one.
  const std::uint64_t bound = limits.per_run > 0 ? limits.per_run : limits.per_owner;
  const std::uint64_t head = bound > 0 ? std::min(RunOutputLimits::kMaxHead, bound / 8) : RunOutputLimits::kMaxHead;
  caps.keep_head = head - head % block;
  return caps;
}

std::string dropped_output_note(std::uint64_t bytes) {
  return "[lpd: " + std::to_string(bytes) +
         " bytes of this run's output were dropped here: its log passed its size cap (lpd start "
         "--run-output-max, --run-outputs-per-user-max)]\n";
}

std::string OutputGaps::before(std::string_view bytes, std::uint64_t end) {
  const std::uint64_t start = end >= bytes.size() ? end - bytes.size() : 0;
  std::string note;
  if (start > expected_) {
    const std::uint64_t gap = start - expected_;
    skipped_ += gap;
    note = (at_line_start_ ? "" : "\n") + dropped_output_note(gap);
  }
  expected_ = end;
  if (!bytes.empty()) at_line_start_ = bytes.back() == '\n';
  return note;
}

std::string excerpt_note(std::uint64_t not_shown, std::uint64_t dropped) {
  if (not_shown == 0 && dropped == 0) return "";
  std::string note = "[lpd: the first " + std::to_string(not_shown + dropped) + " bytes of the output are not shown";
  if (dropped > 0)
    note += "; " + std::to_string(dropped) +
            " of them were dropped when the log passed its size cap (lpd start --run-output-max)";
  note += "]\n";
  return note;
}

std::string_view to_string(OutputStream stream) { return stream == OutputStream::kStderr ? "stderr" : "stdout"; }

std::string_view output_file_name(OutputStream stream) {
  return stream == OutputStream::kStderr ? "stderr.log" : "output.log";
}

}  // namespace lpd::daemon
