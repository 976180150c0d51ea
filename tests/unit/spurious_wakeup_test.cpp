// A pidfd that the event loop says is readable has not always ended.
//
// Boost 1.81's epoll reactor queues each descriptor's epoll event as an
// operation, and frees a descriptor's state to a pool (last in, first out)
// as soon as its object is destroyed, even when that state's event is still
// queued in the same batch. An object created meanwhile gets the freed
// state and then receives the dead object's event: a "readable" pidfd of a
// process that runs on. CI met it as a helper "exited with unknown exit
// status" 30 ms after its start while it ran on. These tests build that
// sequence on purpose and check that no watch takes it for an exit.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <memory>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "daemon/os/exit_watch.h"
#include "daemon/os/pidfd_watch.h"

using namespace lpd::daemon;

namespace {

/// A child that sleeps until killed; the test process is its parent.
pid_t start_sleeper() {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::pause();
    ::_exit(0);
  }
  REQUIRE(pid > 0);
  return pid;
}

/// Two pipes made readable before the loop runs, so that one epoll_wait
/// returns both events. The first one's handler destroys the second's
/// descriptor (its event still queued) and calls `make_watch`, which
/// registers a new descriptor: it gets the freed state, and the queued
/// event with it.
struct QueuedEventOfADestroyedDescriptor {
  boost::asio::io_context io;
  int first[2] = {-1, -1};
  int second[2] = {-1, -1};
  std::unique_ptr<boost::asio::posix::stream_descriptor> first_end;
  std::unique_ptr<boost::asio::posix::stream_descriptor> second_end;

  QueuedEventOfADestroyedDescriptor() {
    REQUIRE(::pipe2(first, O_CLOEXEC | O_NONBLOCK) == 0);
    REQUIRE(::pipe2(second, O_CLOEXEC | O_NONBLOCK) == 0);
    first_end = std::make_unique<boost::asio::posix::stream_descriptor>(io, first[0]);
    second_end = std::make_unique<boost::asio::posix::stream_descriptor>(io, second[0]);
    REQUIRE(::write(first[1], "x", 1) == 1);
    REQUIRE(::write(second[1], "x", 1) == 1);
  }
  ~QueuedEventOfADestroyedDescriptor() {
    ::close(first[1]);
    ::close(second[1]);
  }

  template <typename MakeWatch>
  void run(MakeWatch make_watch) {
    first_end->async_wait(boost::asio::posix::stream_descriptor::wait_read, [&](boost::system::error_code ec) {
      REQUIRE_FALSE(ec);
      second_end.reset();  // its readiness is already queued
      make_watch();
    });
    // Runs everything that is ready now: the first pipe's handler, then
    // the queued event; a watch that took it for an exit has fired by then.
    io.poll();
    io.restart();
    io.poll();
  }
};

bool exited(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

}  // namespace

TEST_CASE("a child's ExitWatch does not take a queued event of a destroyed descriptor for its exit") {
  const pid_t child = start_sleeper();
  QueuedEventOfADestroyedDescriptor loop;
  std::shared_ptr<ExitWatch> watch;
  std::optional<ExitStatus> seen;
  loop.run([&] {
    watch = ExitWatch::child(loop.io, open_process_fd(child), [&](const ExitStatus& status) { seen = status; });
  });
  CHECK_FALSE(exited(watch->pidfd()));
  CHECK_FALSE(seen.has_value());

  // Its real end still comes, reaped, with its real status.
  ::kill(child, SIGKILL);
  while (!seen) loop.io.run_one();
  CHECK(seen->known());
  CHECK(seen->signal == SIGKILL);
}

TEST_CASE("an adopted ExitWatch (a process lpd did not start) ignores the queued event of a destroyed descriptor too") {
  const pid_t child = start_sleeper();
  QueuedEventOfADestroyedDescriptor loop;
  std::shared_ptr<ExitWatch> watch;
  bool fired = false;
  loop.run([&] {
    watch = ExitWatch::adopt(loop.io, open_process_fd(child), [&](const ExitStatus&) { fired = true; });
  });
  CHECK_FALSE(fired);
  ::kill(child, SIGKILL);
  while (!fired) loop.io.run_one();
  int status = 0;
  CHECK(::waitpid(child, &status, 0) == child);  // not reaped by the watch: not its child
}

TEST_CASE("an ExitWatch does not take a queued event of a destroyed descriptor for an exit") {
  const pid_t child = start_sleeper();
  QueuedEventOfADestroyedDescriptor loop;
  std::shared_ptr<ExitWatch> watch;
  bool fired = false;
  loop.run([&] { watch = ExitWatch::start(loop.io, child, [&](const ExitStatus&) { fired = true; }); });
  CHECK_FALSE(fired);
  ::kill(child, SIGKILL);
  while (!fired) loop.io.run_one();
  int status = 0;
  CHECK(::waitpid(child, &status, 0) == child);
}
