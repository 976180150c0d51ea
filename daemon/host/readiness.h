#pragma once

#include <string>
#include <string_view>

#include <sys/types.h>

#include "daemon/core/unique_fd.h"

namespace lpd::daemon {

/// Readiness tells whoever started lpd that the socket accepts connections,
/// or why startup failed, over a pipe: `lpd start` waits on it before
/// returning, and tests pass `--ready-fd` to wait for the same event instead
/// of sleeping. Each line is "READY <pid>" or "ERROR <message>".
class Readiness {
 public:
  Readiness() = default;
  /// Takes over `fd`, the pipe's write end (-1: nobody waits).
  explicit Readiness(int fd) : fd_(fd) {}

  void ready(pid_t pid);
  void failed(std::string_view message);

 private:
  void say(std::string line);
  UniqueFd fd_;
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
