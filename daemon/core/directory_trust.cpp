#include "daemon/core/directory_trust.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "daemon/core/errno_error.h"
#include "daemon/core/unique_fd.h"

namespace lpd::daemon {

void make_directories(const std::string& path, mode_t mode) {
  if (path.empty()) return;
  std::string partial;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), mode) != 0 && errno != EEXIST) throw_errno("cannot create directory " + partial);
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_errno("cannot stat " + path);
  if (!S_ISDIR(st.st_mode)) throw std::runtime_error(path + " exists and is not a directory");
}

void make_private(const std::string& path, mode_t mode) {
  // A link is followed: require_trusted_directory judged it and its target.
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw_errno("cannot open directory " + path);
  struct stat st {};
  const bool ok = ::fstat(fd.get(), &st) == 0 &&
                  ((st.st_mode & 07777 & ~mode) == 0 || ::fchmod(fd.get(), st.st_mode & 07777 & mode) == 0);
  if (!ok) throw_errno("cannot make " + path + " private");
}

std::optional<std::string> directory_distrust(uid_t owner, mode_t mode, uid_t euid, bool allow_shared_sticky) {
  if (owner != euid && owner != 0) return "it belongs to another user";
  if ((mode & (S_IWGRP | S_IWOTH)) == 0) return std::nullopt;
  // Sticky: others may add entries but not remove or rename ours. Only when
  // root owns it: an owner may always replace entries in their directory.
  if (allow_shared_sticky && owner == 0 && (mode & S_ISVTX)) return std::nullopt;
  return "others may write in it";
}

void require_trusted_directory(const std::string& path, bool allow_shared_sticky) {
  const uid_t euid = ::geteuid();
  auto check = [&](const struct stat& st, mode_t mode, const char* what) {
    if (auto why = directory_distrust(st.st_uid, mode, euid, allow_shared_sticky)) {
      char octal[8];
      std::snprintf(octal, sizeof(octal), "%04o", static_cast<unsigned>(st.st_mode & 07777));
      throw std::runtime_error("refusing to use " + std::string(what) + path + " (owner uid " +
                               std::to_string(st.st_uid) + ", mode " + octal + "): " + *why +
                               "; lpd runs as uid " + std::to_string(euid));
    }
  };
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) throw_errno("cannot examine directory " + path);
  // A link's owner could point it elsewhere later, so it must be trusted
  // too; its own mode bits mean nothing.
  if (S_ISLNK(st.st_mode)) {
    check(st, 0, "the link ");
    if (::stat(path.c_str(), &st) != 0) throw_errno("cannot examine directory " + path);
  }
  if (!S_ISDIR(st.st_mode)) throw std::runtime_error(path + " exists and is not a directory");
  check(st, st.st_mode, "directory ");
}

}  // namespace lpd::daemon
