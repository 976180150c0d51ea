#include "daemon/core/space_reserve.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "daemon/core/untrusted_file.h"

namespace lpd::daemon {

std::uint64_t SpaceReserve::size_for(std::uint64_t total_bytes) {
  return std::clamp<std::uint64_t>(total_bytes / 16, kMinBytes, kMaxBytes);
}

std::string SpaceReserve::hold(const std::string& dir) {
  path_ = dir + "/reserve";
  int error = 0;
  fd_ = open_untrusted(path_, O_RDWR | O_CREAT, 0600, error);
  if (error != 0) return why_not(error);
  struct statvfs fs {};
  if (::fstatvfs(fd_.get(), &fs) != 0) return std::strerror(errno);
  const std::uint64_t size = size_for(static_cast<std::uint64_t>(fs.f_blocks) * fs.f_frsize);
  // posix_fallocate returns the error; it does not set errno.
  if (const int error = ::posix_fallocate(fd_.get(), 0, static_cast<off_t>(size)); error != 0)
    return std::strerror(error);
  bytes_ = size;
  return "";
}

std::uint64_t SpaceReserve::release() {
  if (!fd_) return 0;
  const std::uint64_t freed = bytes_;
  // Truncated first: the blocks come back even if the unlink fails.
  if (::ftruncate(fd_.get(), 0) != 0) return 0;
  ::unlink(path_.c_str());
  fd_.reset();
  bytes_ = 0;
  return freed;
}

}  // namespace lpd::daemon
