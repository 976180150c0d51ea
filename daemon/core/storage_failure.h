#pragma once

#include <optional>
#include <string>
#include <system_error>

namespace lpd::daemon {

/// StorageFailure is a write to lpd's state directory that failed: the disk
/// is full (ENOSPC), a quota is reached (EDQUOT), the device failed (EIO) or
/// went read-only (EROFS), or anything else the kernel said no to. StateStore
/// throws it; the dispatcher turns it into the request's error reply, so a
/// full disk is "unavailable, naming the directory and the cause", never a
/// silent loss and never an "internal" bug.
class StorageFailure : public std::system_error {
 public:
  /// `error` is the errno; `state_dir` the state directory's root; `doing`
  /// what was being done ("creating runs/X/job.json.new"). what() reads
  /// "cannot write lpd's state directory <dir>: <strerror> (<doing>)".
  StorageFailure(int error, const std::string& state_dir, const std::string& doing);

  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& state_dir() const { return state_dir_; }
  /// True when the cause is the machine's state (full, quota, I/O error,
  /// read-only): lpd answers `unavailable` and the client may retry later.
  /// False for the rest (a bug or a tampered directory): `internal`.
  bool is_resource_shortage() const { return is_resource_errno(code().value()); }
  static bool is_resource_errno(int error);

 private:
  std::string state_dir_;
  std::string message_;
};

/// A file system out of room for small writes, as statvfs tells it.
struct SpaceShortage {
  int error = 0;       // ENOSPC: what a write there would get
  std::string detail;  // "12 KiB free", "no free inode"
  /// "No space left on device: 12 KiB free".
  std::string describe() const;
};

/// Whether the file system holding `dir` is out of room for small writes:
/// under 64 KiB free for unprivileged writers, or no free inode. nullopt
/// when there is room enough, or statvfs failed (no guess). Used to refuse
/// a helper whose output could not be written before it runs, and to tell
/// one whose output was lost from one that printed nothing.
std::optional<SpaceShortage> space_shortage(const std::string& dir);

}  // namespace lpd::daemon
