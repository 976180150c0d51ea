#pragma once

#include <sys/types.h>

#include <cstddef>
#include <unordered_map>

namespace lpd::daemon {

/// UnfinishedLines counts, per uid, the request bytes lpd holds for lines
/// not yet ended by a newline, over all that user's connections. One line
/// may be 1 MiB (protocol::kMaxLineBytes) and one user may hold 1,024
/// connections, so without a bound on the sum a user could park about
/// 1 GiB in lpd by sending lines and never their newline (500 connections
/// held 502 MB). Root is not counted, as it is not for the connection
/// limit: it can stop lpd anyway. Plain bookkeeping, no I/O.
class UnfinishedLines {
 public:
  /// What one user's connections may hold together: 32 lines of the
  /// largest size at once, far more than a suite's shims send at a time.
  static constexpr std::size_t kMaxBytesPerUser = 32u << 20;

  explicit UnfinishedLines(std::size_t max_bytes_per_user = kMaxBytesPerUser) : max_(max_bytes_per_user) {}

  /// A connection of `uid` that held `was` bytes now holds `now`. Returns
  /// false, counting nothing, when that takes the user past the limit
  /// (the connection should be closed; its `was` stays counted until it
  /// calls release()). Shrinking always succeeds.
  bool hold(uid_t uid, std::size_t was, std::size_t now);
  /// A connection of `uid` that held `was` bytes is gone.
  void release(uid_t uid, std::size_t was) { (void)hold(uid, was, 0); }
  /// Bytes counted for `uid` now.
  std::size_t held(uid_t uid) const;
  std::size_t max_bytes_per_user() const { return max_; }

 private:
  std::size_t max_;
  std::unordered_map<uid_t, std::size_t> held_;  // uids with bytes held only
};

}  // namespace lpd::daemon
