#pragma once

#include <cstdint>
#include <string>

#include "daemon/core/unique_fd.h"

namespace lpd::daemon {

/// SpaceReserve holds some blocks of the state directory's file system in
/// a file of lpd's own (`reserve`), given back at the very end when lpd is
/// stopping with records a full disk refused: a run that ended while the
/// disk was full kept its end only in memory, and the next lpd, finding it
/// "in progress", settled it again from the little that was written (its
/// crash pinned on no test, tests "not run") and rewrote the user's JUnit
/// with that. Released, the blocks let lpd write those records before it
/// goes. Sized to 1/16 of the file system, between 64 KiB and 8 MiB.
class SpaceReserve {
 public:
  static constexpr std::uint64_t kMinBytes = 64 * 1024;
  static constexpr std::uint64_t kMaxBytes = 8 * 1024 * 1024;

  /// The size for a file system of `total_bytes`.
  static std::uint64_t size_for(std::uint64_t total_bytes);

  /// Makes `dir`/reserve hold its size (posix_fallocate: real blocks, not a
  /// sparse file), never through a link. Returns "" or why not (a full
  /// disk already, a file system without fallocate): lpd goes on without.
  std::string hold(const std::string& dir);

  /// Gives the blocks back (truncates and removes the file). Returns the
  /// bytes freed (0 when nothing was held).
  std::uint64_t release();

 private:
  std::string path_;
  UniqueFd fd_;
  std::uint64_t bytes_ = 0;
};

}  // namespace lpd::daemon
