#include "daemon/history/seq_record.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/core/untrusted_file.h"

namespace lpd::daemon {

std::string SeqRecord::format(std::uint64_t next_block) {
  std::string line = "{\"next_block\":" + std::to_string(next_block) + "}";
  line.resize(kBytes - 1, ' ');  // at most 35 characters before the padding
  line += '\n';
  return line;
}

std::string SeqRecord::open(const std::string& path, std::uint64_t next_block) {
  path_ = path;
  if (auto error = open_file(); !error.empty()) return error;
  return sized_ ? "" : write(next_block);
}

std::string SeqRecord::open_file() {
  int error = 0;
  fd_ = open_untrusted(path_, O_RDWR | O_CREAT, 0600, error);
  if (error != 0) return why_not(error);
  struct stat st {};
  sized_ = ::fstat(fd_.get(), &st) == 0 && static_cast<std::size_t>(st.st_size) == kBytes;
  return "";
}

std::string SeqRecord::write(std::uint64_t next_block) {
  if (!fd_) {
    if (path_.empty()) return "not opened";
    if (auto error = open_file(); !error.empty()) return error;
  }
  const std::string line = format(next_block);
  const ssize_t n = ::pwrite(fd_.get(), line.data(), line.size(), 0);
  if (n < 0) return std::strerror(errno);
  if (static_cast<std::size_t>(n) != line.size()) return "short write";
  // A longer file (written otherwise) keeps no stale tail after the line.
  if (!sized_ && ::ftruncate(fd_.get(), static_cast<off_t>(kBytes)) != 0) return std::strerror(errno);
  sized_ = true;
  return "";
}

}  // namespace lpd::daemon
