#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "daemon/os/as_user.h"

using namespace lpd::daemon;

namespace {
const Credentials kNobody{65534, 65534, {65534}};
}

TEST_CASE("a check as a user runs with that user's effective ids and groups, lpd's real and saved ids") {
  if (::geteuid() != 0) {
    WARN("needs root to change ids; not checked");
    return;
  }
  auto seen = check_as(kNobody, []() -> std::optional<std::string> {
    uid_t r, e, s;
    gid_t rg, eg, sg;
    ::getresuid(&r, &e, &s);
    ::getresgid(&rg, &eg, &sg);
    gid_t groups[8];
    const int n = ::getgroups(8, groups);
    return std::to_string(r) + " " + std::to_string(e) + " " + std::to_string(s) + " / " + std::to_string(eg) +
           " / " + std::to_string(n) + ":" + std::to_string(n > 0 ? groups[0] : 0);
  });
  // Real and saved stay root: the user cannot signal or stop the child lpd waits for.
  REQUIRE(seen);
  CHECK(*seen == "0 65534 0 / 65534 / 1:65534");
}

TEST_CASE("a path the user cannot see is checked with the user's rights, not root's") {
  if (::geteuid() != 0) {
    WARN("needs root to change ids; not checked");
    return;
  }
  // /root is not searchable by nobody: the same answer whether a name exists there or not.
  auto exists = check_as(kNobody, []() -> std::optional<std::string> {
    return ::faccessat(AT_FDCWD, "/root", X_OK, AT_EACCESS) == 0 ? "entered" : "refused";
  });
  REQUIRE(exists);
  CHECK(*exists == "refused");
  CHECK_THROWS_WITH(check_runnable_as(kNobody, "true", {"PATH=/usr/bin:/bin"}, "/root"),
                    Catch::Contains("cannot be entered"));
  CHECK_NOTHROW(check_runnable_as(kNobody, "true", {"PATH=/usr/bin:/bin"}, "/"));
}

TEST_CASE("a check that never answers is killed after its timeout and says so") {
  if (::geteuid() != 0) {
    WARN("needs root to change ids; not checked");
    return;
  }
  // A FIFO nobody opens for writing: opening it blocks for good, a hung
  // filesystem's stand-in. (An inherited pipe would not do: the child
  // closes every descriptor it inherits.)
  char dir_template[] = "/tmp/lpd-as-user-XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  REQUIRE(::chmod(dir_template, 0755) == 0);
  const std::string fifo = std::string(dir_template) + "/never";
  REQUIRE(::mkfifo(fifo.c_str(), 0666) == 0);
  REQUIRE(::chmod(fifo.c_str(), 0666) == 0);
  auto result = check_as(
      kNobody,
      [&]() -> std::optional<std::string> {
        const int fd = ::open(fifo.c_str(), O_RDONLY);  // never returns
        if (fd >= 0) ::close(fd);
        return std::nullopt;
      },
      std::chrono::milliseconds(50));
  ::unlink(fifo.c_str());
  ::rmdir(dir_template);
  REQUIRE(result);
  CHECK_THAT(*result, Catch::Contains("took over 50 ms"));
}

TEST_CASE("without an identity the check runs in lpd itself") {
  CHECK(check_as(std::nullopt, []() -> std::optional<std::string> { return std::nullopt; }) == std::nullopt);
  CHECK(check_as(std::nullopt, []() -> std::optional<std::string> { return "no"; }) == std::optional<std::string>("no"));
}
