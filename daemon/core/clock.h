#pragma once

#include <chrono>

namespace lpd::daemon {

/// Wall-clock seconds since the epoch, as stored in every record.
inline double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// A steady duration from seconds, for timers.
inline std::chrono::steady_clock::duration seconds_to_duration(double seconds) {
  if (seconds < 0) seconds = 0;
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace lpd::daemon
