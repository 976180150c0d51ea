#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

#include "daemon/os/launcher.h"
#include "daemon/core/unique_fd.h"

namespace lpd::daemon {

/// FakeLauncher starts nothing and records what it was asked: the seam
/// services are tested through (ProcessLauncher), without processes.
///
/// With `end_descriptors`, each launch hands out an eventfd where a pidfd
/// would be; end(i) makes it readable, as a pidfd becomes when its process
/// ends, so a service's ExitWatch (child or adopt) fires from the
/// event loop as it would for a real child. Its reap (waitid) finds no
/// child: the status is unknown, as for a child lpd did not reap itself.
struct FakeLauncher : ProcessLauncher {
  /// The pid every launch reports. Keep the default for specs only: a
  /// service that signals what it launched needs kNoSuchPid.
  pid_t pid = 4242;
  /// A pid no process can have (Linux's PID_MAX_LIMIT is 2^22), so kill(2)
  /// on it is ESRCH whatever runs on the machine.
  static constexpr pid_t kNoSuchPid = (1 << 22) + 7;
  bool end_descriptors = false;
  std::vector<LaunchSpec> launched;
  /// The writing side of each launch's eventfd (end_descriptors only).
  std::vector<UniqueFd> ends;

  Launched launch(const LaunchSpec& spec) override {
    launched.push_back(spec);
    int pidfd = -1;
    if (end_descriptors) {
      UniqueFd end(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      REQUIRE(end);
      pidfd = ::dup(end.get());  // owned by the caller, as a pidfd is
      REQUIRE(pidfd >= 0);
      ends.push_back(std::move(end));
    }
    return Launched{pid, pidfd, 1, spec.argv.front(), ""};
  }

  /// The `i`th launched process ends (its pidfd polls readable from now on).
  void end(std::size_t i) {
    REQUIRE(i < ends.size());
    const std::uint64_t one = 1;
    REQUIRE(::write(ends[i].get(), &one, sizeof one) == sizeof one);
  }
};

}  // namespace lpd::daemon
