#pragma once

#include <algorithm>
#include <chrono>

namespace lpd::daemon {

/// The wait before the next attempt after `failures` attempts in a row
/// failed (0 or 1: the first wait): `first`, doubling at each further
/// failure, never more than `most`. The one backoff rule of lpd's retries
/// (a crash record on a full disk, a watch lpd could not set up); each
/// caller names its own `first` and `most`.
constexpr std::chrono::milliseconds doubling_delay(unsigned failures, std::chrono::milliseconds first,
                                                   std::chrono::milliseconds most) {
  std::chrono::milliseconds delay = first;
  for (unsigned i = 1; i < failures && delay < most; ++i) delay *= 2;
  return std::min(delay, most);
}

}  // namespace lpd::daemon
