#include "daemon/host/readiness.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace lpd::daemon {

void Readiness::ready(pid_t pid) { say("READY " + std::to_string(pid) + "\n"); }

void Readiness::failed(std::string_view message) { say("ERROR " + std::string(message) + "\n"); }

void Readiness::say(std::string line) {
  if (!fd_) return;
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_.get(), p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  fd_.reset();  // one line only: the starting side reads to the end
}

ReadinessReport wait_for_readiness(int read_fd) {
  std::string text;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(read_fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ReadinessReport report;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  if (text.rfind("READY ", 0) == 0) {
    report.ready = true;
    report.pid = static_cast<pid_t>(std::strtol(text.c_str() + 6, nullptr, 10));
  } else if (text.rfind("ERROR ", 0) == 0) {
    report.error = text.substr(6);
  }
  return report;
}

}  // namespace lpd::daemon
