#include "shim/native/src/process_info.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <string>

namespace lpd::shim {

ProcessInfo current_process_info() {
  ProcessInfo info;
  // open(O_CLOEXEC), not an ifstream: the test process may fork and exec
  // from another thread while this is open.
  std::string raw;
  const int fd = ::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char chunk[4096];
    for (;;) {
      const ssize_t n = ::read(fd, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      raw.append(chunk, static_cast<std::size_t>(n));
    }
    ::close(fd);
  }
  std::string arg;
  for (char c : raw) {
    if (c == '\0') {
      info.argv.push_back(std::move(arg));
      arg.clear();
    } else {
      arg.push_back(c);
    }
  }
  if (!arg.empty()) info.argv.push_back(std::move(arg));

  char buf[PATH_MAX];
  if (::getcwd(buf, sizeof(buf)) != nullptr) info.cwd = buf;
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) == 0) info.hostname = host;
  return info;
}

}  // namespace lpd::shim
