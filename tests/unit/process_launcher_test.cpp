#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/os/launcher.h"
#include "daemon/os/exit_watch.h"
#include "protocol/error.h"
#include "tests/unit/descriptor_pressure.h"
#include "tests/unit/fake_launcher.h"

using namespace lpd::daemon;
using lpd::protocol::ErrorCode;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs `argv` through the real launcher into a temporary log, waits for
/// its exit through the pidfd, and returns the status and what it printed.
std::pair<ExitStatus, std::string> run(const std::vector<std::string>& argv, std::vector<std::string> env = {"PATH=/usr/bin:/bin"}) {
  boost::asio::io_context io;
  char path[] = "/tmp/lpd-launch-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  SystemProcessLauncher launcher;
  LaunchSpec spec;
  spec.argv = argv;
  spec.cwd = "/tmp";
  spec.env = std::move(env);
  spec.stdout_fd = fd;
  spec.stderr_fd = fd;
  const auto launched = launcher.launch(spec);
  ::close(fd);
  REQUIRE(launched.pid > 0);
  REQUIRE(launched.pidfd >= 0);
  CHECK(launched.start_time > 0);
  ExitStatus status;
  auto watch = ExitWatch::child(io, launched.pidfd, [&](const ExitStatus& s) { status = s; });
  io.run();
  std::string out = read_file(path);
  ::unlink(path);
  return {status, out};
}

}  // namespace

TEST_CASE("a command that is not there is refused before anything is spawned") {
  try {
    resolve_executable("surely-no-such-command-lpd", {"PATH=/usr/bin:/bin"}, "/");
    FAIL("resolved");
  } catch (const lpd::protocol::Error& e) {
    CHECK(e.code() == ErrorCode::kNotFound);
    CHECK(std::string(e.what()).find("command not found: surely-no-such-command-lpd") != std::string::npos);
  }
  CHECK_THROWS_AS(resolve_executable("./nope", {}, "/tmp"), lpd::protocol::Error);
  // The PATH searched is the child's, not lpd's.
  CHECK_THROWS_AS(resolve_executable("sh", {"PATH=/nonexistent"}, "/"), lpd::protocol::Error);
  CHECK(resolve_executable("sh", {"PATH=/nonexistent:/bin"}, "/") == "/bin/sh");
  CHECK(resolve_executable("/bin/sh", {}, "/") == "/bin/sh");
}

TEST_CASE("the real launcher reports exit codes and signals apart, from the pidfd") {
  auto [exited, out1] = run({"sh", "-c", "echo hi; exit 11"});
  CHECK(exited.known());
  CHECK(exited.exit_code == 11);
  CHECK_FALSE(exited.signal);
  CHECK(out1 == "hi\n");
  auto [killed, out2] = run({"sh", "-c", "kill -SEGV $$"});
  CHECK(killed.known());
  CHECK(killed.signal == SIGSEGV);
}

TEST_CASE("children get their own session, the given environment and default signal handling") {
  const auto previous = std::signal(SIGPIPE, SIG_IGN);  // as lpd does
  auto [status, out] = run({"sh", "-c", "echo FOO=$FOO; grep SigIgn /proc/self/status"},
                           {"PATH=/usr/bin:/bin", "FOO=bar"});
  std::signal(SIGPIPE, previous);
  CHECK(status.exit_code == 0);
  CHECK(out.find("FOO=bar\n") != std::string::npos);
  // sh itself ignores nothing, so no inherited SIGPIPE-ignore shows up.
  CHECK(out.find("SigIgn:\t0000000000000000") != std::string::npos);
}

TEST_CASE("the fake launcher records the spec it was given") {
  FakeLauncher fake;
  LaunchSpec spec;
  spec.argv = {"server", "--port", "1"};
  spec.cwd = "/srv";
  spec.credentials = Credentials{1000, 1000, {1000, 27}};
  const auto launched = fake.launch(spec);
  CHECK(launched.pid == 4242);
  REQUIRE(fake.launched.size() == 1);
  CHECK(fake.launched[0].credentials->groups.size() == 2);
  CHECK(fake.launched[0].new_session);
}

TEST_CASE("a command starts with stdin, stdout and stderr only, whatever lpd left inheritable") {
  // Descriptors opened without close-on-exec, as a library might: the
  // launcher's second wall must keep them from the command all the same.
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
  const int file = ::open("/dev/null", O_RDONLY);
  REQUIRE(file >= 0);
  auto [status, out] = run({"sh", "-c", "exec ls /proc/self/fd"});
  ::close(pair[0]);
  ::close(pair[1]);
  ::close(file);
  CHECK(status.exit_code == 0);
  CHECK(out == "0\n1\n2\n3\n");  // 3: the directory ls itself lists
}

TEST_CASE("out of descriptors, a launch fails with unavailable and leaves nothing running") {
  boost::asio::io_context io;
  boost::asio::steady_timer reactor_made_before_the_pressure(io);
  SystemProcessLauncher launcher;
  LaunchSpec spec;
  spec.argv = {"sleep", "60"};
  spec.cwd = "/tmp";
  spec.env = {"PATH=/usr/bin:/bin"};
  // Short by every number of descriptors a launch needs, one after another
  // (/dev/null, the pidfd, the /proc read, and some to spare).
  for (std::size_t free_slots = 0; free_slots < 8; ++free_slots) {
    INFO(free_slots << " descriptor(s) free");
    lpd::test::DescriptorPressure pressure(free_slots);
    try {
      const Launched launched = launcher.launch(spec);
      pressure.release();
      CHECK(launched.pidfd >= 0);
      CHECK(launched.start_time > 0);
      ::kill(launched.pid, SIGKILL);
      int ignored;
      ::waitpid(launched.pid, &ignored, 0);
      ::close(launched.pidfd);
    } catch (const lpd::protocol::Error& e) {
      pressure.release();
      CHECK(e.code() == ErrorCode::kUnavailable);
      CHECK(std::string(e.what()).find("out of file descriptors (EMFILE)") != std::string::npos);
    }
    // Nothing started is left running or unreaped.
    int ignored;
    CHECK(::waitpid(-1, &ignored, WNOHANG) == -1);
    CHECK(errno == ECHILD);
  }
}
