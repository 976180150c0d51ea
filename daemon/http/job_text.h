// a job's `text`, the run's output, bounded.
#pragma once

#include <cstddef>
#include <string>

namespace lpd::daemon::http {

/// At most this much of a run's output goes into one job's `text`.
inline constexpr std::size_t kMaxJobTextBytes = 1024 * 1024;

/// The newest `max_bytes` of the output log at `path` (a run's output.log,
/// stdout and stderr merged, written by the command as its user): opened as
/// an untrusted file (no link, no FIFO), its holes (output the run output
/// cap freed) skipped. When output is left out, the text starts with one
/// line saying how much and where the whole of it is
/// ("[lpd: the first N bytes of this job's output are not shown ...]").
/// "" when the log is missing or unreadable (not started yet).
std::string job_output_text(const std::string& path, std::size_t max_bytes = kMaxJobTextBytes);

}  // namespace lpd::daemon::http
