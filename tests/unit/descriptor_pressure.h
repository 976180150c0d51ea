#pragma once

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace lpd::test {

/// Fills this process's descriptor table, as a client flood fills lpd's:
/// lowers the soft RLIMIT_NOFILE to a little above what is open and opens
/// /dev/null until EMFILE, then gives `keep_free` slots back. Everything
/// is returned by release() or at the end of the scope.
class DescriptorPressure {
 public:
  explicit DescriptorPressure(std::size_t keep_free = 0) {
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved_) == 0);
    const int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(probe >= 0);
    ::close(probe);
    rlimit low = saved_;
    low.rlim_cur = static_cast<rlim_t>(probe) + 16;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
    for (;;) {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        REQUIRE(errno == EMFILE);
        break;
      }
      held_.push_back(fd);
    }
    for (std::size_t i = 0; i < keep_free && !held_.empty(); ++i) {
      ::close(held_.back());
      held_.pop_back();
    }
  }
  ~DescriptorPressure() { release(); }
  DescriptorPressure(const DescriptorPressure&) = delete;
  DescriptorPressure& operator=(const DescriptorPressure&) = delete;

  void release() {
    for (int fd : held_) ::close(fd);
    held_.clear();
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }

 private:
  rlimit saved_{};
  std::vector<int> held_;
};

}  // namespace lpd::test
