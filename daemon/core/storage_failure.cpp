#include "daemon/core/storage_failure.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

namespace lpd::daemon {

StorageFailure::StorageFailure(int error, const std::string& state_dir, const std::string& doing)
    : std::system_error(error, std::generic_category(), doing),
      state_dir_(state_dir),
      message_("cannot write lpd's state directory " + state_dir + ": " + std::strerror(error) + " (" + doing + ")") {}

bool StorageFailure::is_resource_errno(int error) {
  return error == ENOSPC || error == EDQUOT || error == EIO || error == EROFS || error == ENOMEM || error == EFBIG;
}

std::string SpaceShortage::describe() const { return std::string(std::strerror(error)) + ": " + detail; }

std::optional<SpaceShortage> space_shortage(const std::string& dir) {
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) != 0) return std::nullopt;
  const unsigned long long free_bytes = static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize;
  constexpr unsigned long long kRoomForLines = 64 * 1024;
  if (fs.f_files > 0 && fs.f_favail == 0) return SpaceShortage{ENOSPC, "no free inode"};
  if (free_bytes < kRoomForLines) return SpaceShortage{ENOSPC, std::to_string(free_bytes / 1024) + " KiB free"};
  return std::nullopt;
}

}  // namespace lpd::daemon
