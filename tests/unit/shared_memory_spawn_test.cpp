// spawn_sharing_memory: the child shares lpd's memory until its exec, so
// what it changes must stay its own (credentials, signal mask, umask, working
// directory) and a failed step must come back as an errno with nothing left.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "daemon/os/shared_memory_spawn.h"

using namespace lpd::daemon;

namespace {

/// A child's output file and the plan's strings, kept alive across the spawn.
struct Spawned {
  std::string out_path;
  std::string output;
  int status = -1;
};

std::string whole_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs `args` (args[0] a full path) through spawn_sharing_memory with
/// `tune` applied to the plan, waits for it, and returns what it printed
/// and its wait status.
template <typename Tune>
Spawned run_command(std::vector<std::string> args, Tune tune) {
  Spawned result;
  char path[] = "/tmp/lpd-spawn-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::fchmod(fd, 0666);  // a child running as another user writes here too
  result.out_path = path;
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(null_fd >= 0);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string path_env = "PATH=/usr/bin:/bin";
  char* envp[] = {path_env.data(), nullptr};
  ChildPlan plan;
  plan.executable = args.front().c_str();
  plan.argv = argv.data();
  plan.envp = envp;
  plan.cwd = "/";
  plan.stdin_fd = null_fd;
  plan.stdout_fd = fd;
  plan.stderr_fd = fd;
  ::sigemptyset(&plan.exec_mask);
  tune(plan);
  const pid_t pid = spawn_sharing_memory(plan);
  ::close(fd);
  ::close(null_fd);
  REQUIRE(::waitpid(pid, &result.status, 0) == pid);
  result.output = whole_file(path);
  ::unlink(path);
  return result;
}

/// run_command() of `sh -c script`.
template <typename Tune>
Spawned run_script(const std::string& script, Tune tune) {
  return run_command({"/bin/sh", "-c", script}, tune);
}

}  // namespace

TEST_CASE("a spawned child's umask, directory and signal mask are its own, not lpd's") {
  const mode_t lpd_umask = ::umask(066);
  char cwd_before[PATH_MAX];
  REQUIRE(::getcwd(cwd_before, sizeof cwd_before) != nullptr);
  sigset_t blocked, original, mask_after;
  ::sigemptyset(&blocked);
  ::sigaddset(&blocked, SIGUSR2);  // lpd's own mask, which the child must not start with
  ::pthread_sigmask(SIG_BLOCK, &blocked, &original);

  auto child = run_script("umask; pwd", [](ChildPlan& plan) {
    plan.cwd = "/tmp";
    plan.umask = 027;
  });
  // Not through sh, which clears the mask it starts with.
  auto masked = run_command({"/bin/grep", "SigBlk", "/proc/self/status"},
                            [](ChildPlan& plan) { ::sigaddset(&plan.exec_mask, SIGTERM); });

  ::pthread_sigmask(SIG_BLOCK, nullptr, &mask_after);
  char cwd_after[PATH_MAX];
  REQUIRE(::getcwd(cwd_after, sizeof cwd_after) != nullptr);
  CHECK(::umask(lpd_umask) == 066);  // lpd's umask as it was
  CHECK(std::string(cwd_after) == cwd_before);
  CHECK(::sigismember(&mask_after, SIGUSR2) == 1);
  CHECK(::sigismember(&mask_after, SIGTERM) == 0);  // every signal was blocked only across the clone
  ::pthread_sigmask(SIG_SETMASK, &original, nullptr);

  CHECK(WIFEXITED(child.status));
  CHECK(WEXITSTATUS(child.status) == 0);
  CHECK(child.output == "0027\n/tmp\n");
  // SIGTERM is 15: bit 14 of the mask, 0x4000; SIGUSR2 (12, 0x800) is not there.
  CHECK(masked.output == "SigBlk:\t0000000000004000\n");
}

TEST_CASE("a step of the child that fails comes back as its errno, the child reaped") {
  // The errno spawn_sharing_memory threw, or -1 when it spawned.
  auto spawn_errno = [](auto tune) {
    try {
      run_script("exit 0", tune);
    } catch (const std::system_error& e) {
      return e.code().value();
    }
    return -1;
  };
  CHECK(spawn_errno([](ChildPlan& plan) { plan.executable = "/nonexistent/lpd-no-such-command"; }) == ENOENT);
  CHECK(spawn_errno([](ChildPlan& plan) { plan.cwd = "/nonexistent/lpd-no-such-directory"; }) == ENOENT);
  // Nothing is left to reap.
  int ignored;
  CHECK(::waitpid(-1, &ignored, WNOHANG) == -1);
  CHECK(errno == ECHILD);
}

TEST_CASE("credentials dropped in the child are the child's alone") {
  if (::geteuid() != 0) {
    WARN("not root: a child cannot be given another user's credentials here");
    return;
  }
  const gid_t groups[] = {65533};
  // A second thread, as lpd may have: whatever a set*id call in the child
  // does, no thread of lpd's may change with it.
  std::promise<void> spawned;
  std::future<uid_t> other_thread_uid = std::async(std::launch::async, [done = spawned.get_future()]() mutable {
    done.wait();
    uid_t r, e, s;
    return ::getresuid(&r, &e, &s) == 0 && r == 0 && e == 0 && s == 0 ? uid_t{0} : uid_t{1};
  });
  auto child = run_script("id -u; id -g; id -G", [&](ChildPlan& plan) {
    plan.drop_credentials = true;
    plan.uid = 65534;
    plan.gid = 65534;
    plan.groups = groups;
    plan.group_count = 1;
  });
  CHECK(WIFEXITED(child.status));
  spawned.set_value();
  CHECK(child.output == "65534\n65534\n65534 65533\n");
  CHECK(other_thread_uid.get() == 0);
  // The child shared lpd's memory, not its credentials: lpd is still root.
  CHECK(::getuid() == 0);
  CHECK(::geteuid() == 0);
  CHECK(::getgid() == 0);
  uid_t r, e, s;
  REQUIRE(::getresuid(&r, &e, &s) == 0);
  CHECK((r == 0 && e == 0 && s == 0));
}
