#pragma once

#include <optional>
#include <string>

#include <sys/types.h>

#include "daemon/core/unique_fd.h"

namespace lpd::daemon {

/// FileLock is an exclusive record lock (fcntl F_SETLK, whole file) on a
/// file holding the owner's pid. The kernel drops it when the process dies,
/// so unlike a pid file it can never go stale, and no child inherits it
/// (a flock would live on in a child forked just before lpd was killed).
/// The pid inside is only for messages. The lock also goes if the process
/// closes any other descriptor of the same file: nothing else opens it.
class FileLock {
 public:
  /// Takes the lock without waiting. On failure returns nullopt and, when
  /// another process holds it, sets `holder` to the pid written inside.
  /// Throws when `path` cannot be opened, is a symbolic link (never
  /// followed) or is anything but a regular file.
  static std::optional<FileLock> try_acquire(const std::string& path, pid_t* holder);

  FileLock(FileLock&&) noexcept = default;
  FileLock& operator=(FileLock&&) noexcept = default;

  /// Rewrites the pid inside (after a fork changed it).
  void record_pid(pid_t pid);

  /// The pid the previous holder wrote inside (0: none): a process that is
  /// gone, since this one holds the lock now.
  pid_t previous_holder() const { return previous_holder_; }

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  pid_t previous_holder_ = 0;
};

}  // namespace lpd::daemon
