#include "daemon/os/remove_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "daemon/core/unique_fd.h"

namespace lpd::daemon {
namespace {

std::string failure(const std::string& what, int error) { return what + ": " + std::strerror(error); }

/// Empties the directory open as `dir_fd`, whose device is `device`.
/// Returns "" or the first failure.
std::string empty_directory(UniqueFd dir_fd, dev_t device, const std::string& shown, int depth_left) {
  DIR* listing = ::fdopendir(dir_fd.get());
  if (!listing) return failure(shown, errno);
  dir_fd.release();  // closedir closes it
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(listing)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  std::string first_error;
  for (const auto& name : names) {
    const std::string child = shown + "/" + name;
    struct stat st {};
    if (::fstatat(::dirfd(listing), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT && first_error.empty()) first_error = failure(child, errno);
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (st.st_dev != device) {
        if (first_error.empty()) first_error = child + ": a mount point; not entered";
        continue;
      }
      if (depth_left <= 0) {
        if (first_error.empty()) first_error = child + ": nested too deep; not entered";
        continue;
      }
      UniqueFd sub(::openat(::dirfd(listing), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) {
        if (first_error.empty()) first_error = failure(child, errno);
        continue;
      }
      auto error = empty_directory(std::move(sub), device, child, depth_left - 1);
      if (!error.empty()) {
        if (first_error.empty()) first_error = error;
        continue;
      }
      if (::unlinkat(::dirfd(listing), name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT && first_error.empty())
        first_error = failure(child, errno);
    } else if (::unlinkat(::dirfd(listing), name.c_str(), 0) != 0 && errno != ENOENT && first_error.empty()) {
      // A link, a file, a FIFO, a socket: the name goes, never its target.
      first_error = failure(child, errno);
    }
  }
  ::closedir(listing);
  return first_error;
}

}  // namespace

std::string remove_tree_at(int parent_fd, const std::string& name, int max_depth) {
  UniqueFd dir_fd(::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir_fd) {
    if (errno == ENOENT) return "";
    if (errno == ENOTDIR || errno == ELOOP) {
      // Not a directory (a link planted in place of it): remove the name only.
      if (::unlinkat(parent_fd, name.c_str(), 0) == 0 || errno == ENOENT) return "";
    }
    return failure(name, errno);
  }
  struct stat st {};
  if (::fstat(dir_fd.get(), &st) != 0) return failure(name, errno);
  auto error = empty_directory(std::move(dir_fd), st.st_dev, name, max_depth);
  if (!error.empty()) return error;
  if (::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) return failure(name, errno);
  return "";
}

}  // namespace lpd::daemon
