#include "daemon/core/untrusted_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace lpd::daemon {

UniqueFd open_untrusted(const std::string& path, int access, mode_t mode, int& error) {
  error = 0;
  UniqueFd fd(::open(path.c_str(), access | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) {
    error = errno;
    return UniqueFd();
  }
  if (!S_ISREG(st.st_mode)) {
    error = EINVAL;
    return UniqueFd();
  }
  return fd;
}

std::string why_not(int error) { return error == EINVAL ? "not a regular file" : std::strerror(error); }

UniqueFd open_untrusted(const std::string& path) {
  int error = 0;
  UniqueFd fd = open_untrusted(path, O_RDONLY, 0, error);
  if (error == 0) return fd;
  throw std::system_error(error, std::generic_category(),
                          error == ELOOP    ? path + " is a symbolic link; lpd does not follow it"
                          : error == EINVAL ? path + " is not a regular file"
                                            : "cannot open " + path);
}

BoundedRead read_bounded(int fd, std::size_t max_bytes) {
  BoundedRead out;
  // Sized by the file (which may still grow), not by the limit: a 16 MiB
  // buffer per small record made a start with 20,000 records take minutes.
  struct stat st {};
  const std::size_t hint = ::fstat(fd, &st) == 0 && st.st_size > 0 ? static_cast<std::size_t>(st.st_size) : 0;
  out.bytes.resize(std::min(max_bytes, std::max<std::size_t>(hint, 4096)) + 1);
  std::size_t got = 0;
  while (got < max_bytes + 1) {
    if (got == out.bytes.size()) out.bytes.resize(std::min(max_bytes + 1, out.bytes.size() * 2));
    const ssize_t n = ::pread(fd, out.bytes.data() + got, out.bytes.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "read");
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.truncated = got > max_bytes;
  out.bytes.resize(out.truncated ? max_bytes : got);
  return out;
}

std::optional<std::string> read_untrusted_file(const std::string& path, std::size_t max_bytes) {
  try {
    UniqueFd fd = open_untrusted(path);
    BoundedRead read = read_bounded(fd.get(), max_bytes);
    if (read.truncated) return std::nullopt;
    return std::move(read.bytes);
  } catch (const std::system_error&) {
    return std::nullopt;
  }
}

}  // namespace lpd::daemon
