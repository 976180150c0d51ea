#pragma once

#include <string>
#include <string_view>

#include <sys/types.h>

namespace lpd::daemon {

/// Readiness tells whoever started lpd that the socket accepts connections,
/// or why startup failed, over a pipe: `lpd start` waits on it before
/// returning, and tests pass `--ready-fd` to wait for the same event instead
/// of sleeping. Each line is "READY <pid>" or "ERROR <message>".
class Readiness {
 public:
  Readiness() = default;
  explicit Readiness(int fd) : fd_(fd) {}
  Readiness(const Readiness&) = delete;
  Readiness& operator=(const Readiness&) = delete;
  ~Readiness();

  void ready(pid_t pid);
  void failed(std::string_view message);

 private:
  void say(std::string line);
  int fd_ = -1;
};

/// What the starting side read from the pipe.
struct ReadinessReport {
  bool ready = false;
  pid_t pid = 0;
  std::string error;  // empty with ready == false: the daemon died silently
};

/// Blocks until the pipe says something or closes.
ReadinessReport wait_for_readiness(int read_fd);

}  // namespace lpd::daemon
