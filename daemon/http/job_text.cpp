// a job's `text`, the run's output, bounded.
#include "daemon/http/job_text.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "daemon/logs/log_cap.h"
#include "daemon/core/untrusted_file.h"

namespace lpd::daemon::http {

std::string job_output_text(const std::string& path, std::size_t max_bytes) {
  try {
    UniqueFd fd = open_untrusted(path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return {};
    const auto size = static_cast<std::uint64_t>(st.st_size);
    std::uint64_t from = size > max_bytes ? size - max_bytes : 0;
    // Bytes the output cap freed read as zeros: never hand those out.
    std::uint64_t dropped = 0;
    if (const auto parts = log_parts(path); parts && parts->dropped() > 0 && parts->kept_from <= size) {
      dropped = parts->dropped();
      if (from < parts->kept_from) from = parts->kept_from;
    }
    std::string bytes(static_cast<std::size_t>(size - from), '\0');
    std::size_t got = 0;
    while (got < bytes.size()) {
      const ssize_t n = ::pread(fd.get(), bytes.data() + got, bytes.size() - got, static_cast<off_t>(from + got));
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    bytes.resize(got);
    // Started inside a UTF-8 sequence: begin at the next character.
    std::size_t skip = 0;
    if (from > 0)
      while (skip < bytes.size() && skip < 3 && (static_cast<unsigned char>(bytes[skip]) & 0xC0) == 0x80) ++skip;
    bytes.erase(0, skip);
    from += skip;
    if (from == 0) return bytes;
    return "[lpd: the first " + std::to_string(from) + " bytes of this job's output are not shown" +
           (dropped ? " (" + std::to_string(dropped) + " freed by the run output cap)" : std::string()) +
           "; the whole is in " + path + "]\n" + bytes;
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace lpd::daemon::http
