#include "daemon/logs/log_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <system_error>
#include <vector>

#include "daemon/core/untrusted_file.h"

namespace lpd::daemon {

LogRotation rotate_logs(const std::vector<std::string>& kept_newest_first, const std::string& new_log,
                        std::size_t keep) {
  if (keep == 0) keep = 1;
  LogRotation out;
  out.kept.push_back(new_log);
  for (const auto& path : kept_newest_first) {
    if (path == new_log) continue;
    (out.kept.size() < keep ? out.kept : out.removed).push_back(path);
  }
  return out;
}

bool is_log_of(std::string_view path, std::string_view logs_dir, std::string_view stem) {
  if (path.size() <= logs_dir.size() + 1 || path.substr(0, logs_dir.size()) != logs_dir ||
      path[logs_dir.size()] != '/')
    return false;
  std::string_view file = path.substr(logs_dir.size() + 1);
  if (file.size() <= stem.size() + 1 || file.substr(0, stem.size()) != stem || file[stem.size()] != '.') return false;
  file.remove_prefix(stem.size() + 1);
  constexpr std::string_view kSuffix = ".log";
  if (file.size() <= kSuffix.size() || file.substr(file.size() - kSuffix.size()) != kSuffix) return false;
  file.remove_suffix(kSuffix.size());
  for (char c : file)
    if (c < '0' || c > '9') return false;
  return true;
}

namespace {

int open_log(const std::string& path, int extra_flags, std::optional<std::pair<uid_t, gid_t>> owner) {
  // 0600: a helper's log is its owner's (and lpd's) to read. No link or
  // FIFO is followed or opened, even if one was planted before logs/ was lpd's.
  UniqueFd fd(
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | extra_flags, 0600));
  if (!fd && errno == EEXIST && (extra_flags & O_EXCL)) return -1;
  if (!fd) throw std::system_error(errno, std::generic_category(), "cannot open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    throw std::system_error(EINVAL, std::generic_category(), path + " is not a regular file");
  if (owner && ::fchown(fd.get(), owner->first, owner->second) != 0)
    throw std::system_error(errno, std::generic_category(), "cannot hand " + path + " to its owner");
  return fd.release();
}

}  // namespace

int create_log(const std::string& path, std::optional<std::pair<uid_t, gid_t>> owner) {
  return open_log(path, O_EXCL, owner);
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  return static_cast<std::uint64_t>(st.st_size);
}

std::uint64_t next_data_offset(int fd, std::uint64_t offset) {
  const off_t data = ::lseek(fd, static_cast<off_t>(offset), SEEK_DATA);
  if (data >= 0) return static_cast<std::uint64_t>(data);
  if (errno != ENXIO) return offset;  // EINVAL...: no SEEK_DATA here, and then no hole of lpd's either
  // Only a hole from `offset` on, or `offset` at the end. The size taken
  // now may include bytes a writer appended since (a log being written is
  // at its end most of the time): asked again, SEEK_DATA sees every byte
  // the size counts. Still nothing: a hole up to that size (the cap
  // emptied the log); else the data it finds. Skipping to the size at
  // once lost such appended bytes (4 KiB of a helper's output under load).
  struct stat st {};
  if (::fstat(fd, &st) != 0) return offset;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size <= offset) return offset;
  const off_t again = ::lseek(fd, static_cast<off_t>(offset), SEEK_DATA);
  if (again >= 0) return static_cast<std::uint64_t>(again);
  return errno == ENXIO ? size : offset;
}

std::uint64_t first_kept_offset(const std::string& path) {
  try {
    return next_data_offset(open_untrusted(path).get(), 0);
  } catch (const std::system_error&) {
    return 0;
  }
}

std::uint64_t offset_of_last_lines(const std::string& path, std::uint64_t lines, std::uint64_t end) {
  if (lines == 0 || end == 0) return end;
  UniqueFd fd;
  try {
    fd = open_untrusted(path);
  } catch (const std::system_error&) {
    return 0;
  }
  // nothing before the kept part is read or counted.
  const std::uint64_t kept_from = std::min(next_data_offset(fd.get(), 0), end);
  constexpr std::uint64_t kBlock = 64 * 1024;
  std::vector<char> block(kBlock);
  std::uint64_t pos = end;
  std::uint64_t newlines = 0;
  bool first_byte = true;  // the byte just before `end`
  std::uint64_t result = 0;
  bool found = false;
  while (pos > kept_from && !found) {
    const std::uint64_t size = pos - kept_from < kBlock ? pos - kept_from : kBlock;
    const std::uint64_t start = pos - size;
    ssize_t n = ::pread(fd.get(), block.data(), size, static_cast<off_t>(start));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (std::uint64_t i = static_cast<std::uint64_t>(n); i-- > 0;) {
      if (block[i] == '\n') {
        if (first_byte) {
          first_byte = false;  // the terminator of the last line
          continue;
        }
        if (++newlines == lines) {
          result = start + i + 1;
          found = true;
          break;
        }
      }
      first_byte = false;
    }
    pos = start;
  }
  return found ? result : kept_from;
}

std::optional<OpenedLog> open_log_to_read(const std::string& path) {
  OpenedLog log;
  try {
    log.fd = open_untrusted(path);
  } catch (const std::system_error&) {
    return std::nullopt;
  }
  if (::fstat(log.fd.get(), &log.st) != 0) return std::nullopt;
  return log;
}

std::optional<std::string> last_log_lines(const std::string& path, std::uint64_t lines, std::size_t max_bytes) {
  auto log = open_log_to_read(path);
  if (!log) return std::nullopt;
  UniqueFd& fd = log->fd;
  const auto end = static_cast<std::uint64_t>(log->st.st_size);
  std::uint64_t start = offset_of_last_lines(path, lines, end);
  bool cut = false;
  if (end - start > max_bytes) {
    start = end - max_bytes;
    cut = true;
  }
  std::string text(end - start, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::pread(fd.get(), text.data() + got, text.size() - got, static_cast<off_t>(start + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (cut) {
    // Start at the next whole line when there is one in what was read.
    const auto newline = text.find('\n');
    if (newline != std::string::npos && newline + 1 < text.size()) text.erase(0, newline + 1);
    text.insert(0, "[...] ");
  }
  return text;
}

}  // namespace lpd::daemon
