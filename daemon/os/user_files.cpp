#include "daemon/os/user_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "daemon/core/unique_fd.h"
#include "daemon/os/as_user.h"
#include "daemon/core/write_all.h"

namespace lpd::daemon {
namespace {

/// Everything the write needs, prepared before the child is made.
struct Plan {
  const char* path;
  const char* temp;     // kReplace: the file renamed over `path`
  const char* parent;   // kCheckWritable: the directory that must take a new file
  std::string_view bytes;
  UserWrite mode;
};


/// Opens for writing without blocking on a FIFO, then insists on a regular file.
int open_regular(const char* path, int flags, UniqueFd* fd_out) {
  UniqueFd fd(::open(path, flags | O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0644));
  if (!fd) return errno == ENXIO ? EINVAL : errno;  // ENXIO: a FIFO or socket nobody reads
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return EINVAL;
  *fd_out = std::move(fd);
  return 0;
}

/// The write itself, as whoever runs it. Returns 0 or an errno value.
int perform(const Plan& plan) {
  UniqueFd fd;
  switch (plan.mode) {
    case UserWrite::kCheckWritable: {
      struct stat st {};
      if (::stat(plan.path, &st) == 0 && !S_ISREG(st.st_mode)) return EINVAL;
      return ::faccessat(AT_FDCWD, plan.parent, W_OK | X_OK, AT_EACCESS) == 0 ? 0 : errno;
    }
    case UserWrite::kAppend: {
      // Appending through a link would write wherever it points: refused.
      if (int err = open_regular(plan.path, O_APPEND | O_CREAT | O_NOFOLLOW, &fd)) return err;
      // A file another user made (a world-writable one in /tmp, say) would
      // get this user's crash records, tracebacks and all, and could feed
      // them lines: only the user's own file is appended to.
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0 || st.st_uid != ::geteuid()) return EXDEV;  // "owned by another user"
      int err = write_all(fd.get(), plan.bytes);
      if (!err && ::fsync(fd.get()) != 0) err = errno;
      return err;
    }
    case UserWrite::kReplace: {
      ::unlink(plan.temp);  // a leftover of an interrupted write
      if (int err = open_regular(plan.temp, O_CREAT | O_EXCL | O_NOFOLLOW, &fd)) return err;
      int err = write_all(fd.get(), plan.bytes);
      if (!err && ::fsync(fd.get()) != 0) err = errno;
      fd.reset();
      if (!err && ::rename(plan.temp, plan.path) != 0) err = errno;
      if (err) ::unlink(plan.temp);
      return err;
    }
  }
  return EINVAL;
}

std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

std::optional<UserWriteError> write_file_as(const std::optional<Credentials>& who, const std::string& path,
                                         std::string_view bytes, UserWrite mode) {
  if (path.empty() || path.front() != '/')
    return UserWriteError{EINVAL, "cannot write \"" + path + "\": the path must be absolute"};
  const std::string temp = path + ".lpd-new";
  const std::string parent = parent_of(path);
  const Plan plan{path.c_str(), temp.c_str(), parent.c_str(), bytes, mode};
  const bool as_other = who && ::geteuid() == 0;
  int err = 0;
  // The errno travels back as the check's message: only its number matters.
  auto failure = check_as(who, [&]() -> std::optional<std::string> {
    if (const int e = perform(plan)) return std::to_string(e);
    return std::nullopt;
  });
  if (!failure) return std::nullopt;
  err = std::atoi(failure->c_str());
  const std::string reason = err == EINVAL  ? "not a regular file"
                             : err == ELOOP ? "is a symbolic link"  // O_NOFOLLOW met one
                             : err == EXDEV ? "the file belongs to another user"  // kAppend's owner check
                             : err > 0      ? std::strerror(err)
                                            : *failure;
  return UserWriteError{
      err > 0 ? err : EPERM,
      "cannot write " + path + (as_other ? " as uid " + std::to_string(who->uid) : std::string()) + ": " + reason};
}

}  // namespace lpd::daemon
