// lpd's "already running" locks (socket and state directory): held by the
// process alone, so a child lpd forked just before it was killed (one that
// has not yet closed its inherited descriptors or exec'd) does not keep a
// restarted lpd out.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "daemon/host/file_lock.h"

using lpd::daemon::FileLock;

namespace {

/// try_acquire in a new process: its exit code 0 when it got the lock,
/// 1 when it is held (the holder's pid written to `holder_pipe`), 2 on error.
int try_from_another_process(const std::string& path, pid_t* holder) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    pid_t who = 0;
    int code = 2;
    try {
      code = FileLock::try_acquire(path, &who) ? 0 : 1;
    } catch (...) {
    }
    (void)!::write(fds[1], &who, sizeof who);
    ::_exit(code);
  }
  ::close(fds[1]);
  pid_t who = 0;
  (void)!::read(fds[0], &who, sizeof who);
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  if (holder) *holder = who;
  return WEXITSTATUS(status);
}

std::string temp_lock_path() {
  char dir[] = "/tmp/lpd-lock-test-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  return std::string(dir) + "/lpd.lock";
}

}  // namespace

TEST_CASE("a held lock keeps others out and names its holder", "[file_lock]") {
  const std::string path = temp_lock_path();
  auto lock = FileLock::try_acquire(path, nullptr);
  REQUIRE(lock);
  pid_t holder = 0;
  CHECK(try_from_another_process(path, &holder) == 1);
  CHECK(holder == ::getpid());
  lock.reset();
  CHECK(try_from_another_process(path, nullptr) == 0);
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

TEST_CASE("a child forked while the lock was held does not keep it", "[file_lock]") {
  const std::string path = temp_lock_path();
  auto lock = FileLock::try_acquire(path, nullptr);
  REQUIRE(lock);
  // The child keeps every inherited descriptor (the lock file's among
  // them) until the test lets it go.
  int hold[2];
  REQUIRE(::pipe(hold) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(hold[1]);
    char c;
    (void)!::read(hold[0], &c, 1);
    ::_exit(0);
  }
  ::close(hold[0]);
  lock.reset();  // as if lpd died: only the child holds the file open now
  CHECK(try_from_another_process(path, nullptr) == 0);
  ::close(hold[1]);
  int status = 0;
  ::waitpid(child, &status, 0);
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}
