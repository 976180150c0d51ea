#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/os/exit_watch.h"
#include "daemon/os/process_identity.h"
#include "daemon/core/resource_shortage.h"
#include "tests/unit/descriptor_pressure.h"

using namespace lpd::daemon;
using lpd::test::DescriptorPressure;

namespace {

ProcStat stat_with(char state, std::uint64_t start_time) {
  ProcStat stat;
  stat.pid = 4242;
  stat.state = state;
  stat.start_time = start_time;
  return stat;
}

/// A child that runs until killed; reaped by the destructor.
struct Sleeper {
  pid_t pid = ::fork();
  Sleeper() {
    if (pid == 0) {
      for (;;) ::pause();
    }
    REQUIRE(pid > 0);
  }
  ~Sleeper() {
    ::kill(pid, SIGKILL);
    int status;
    ::waitpid(pid, &status, 0);
  }
};

}  // namespace

TEST_CASE("only the kernel's 'no such process' is evidence of a death") {
  CHECK(is_no_such_process(ESRCH));
  CHECK(is_no_such_process(ENOENT));
  for (int error : {EMFILE, ENFILE, ENOMEM, EACCES, EPERM, EINVAL, EIO, EAGAIN}) {
    INFO("errno " << error);
    CHECK_FALSE(is_no_such_process(error));
  }
}

TEST_CASE("liveness is three-valued: a failed read of /proc is unknown, not gone") {
  CHECK(judge_liveness(std::nullopt, ENOENT, 100) == Liveness::kGone);
  CHECK(judge_liveness(std::nullopt, ESRCH, 100) == Liveness::kGone);
  CHECK(judge_liveness(std::nullopt, EMFILE, 100) == Liveness::kUnknown);
  CHECK(judge_liveness(std::nullopt, ENFILE, 100) == Liveness::kUnknown);
  CHECK(judge_liveness(std::nullopt, ENOMEM, 100) == Liveness::kUnknown);
  CHECK(judge_liveness(std::nullopt, EACCES, 100) == Liveness::kUnknown);
  CHECK(judge_liveness(std::nullopt, EINVAL, 100) == Liveness::kUnknown);  // garbled text
  CHECK(judge_liveness(std::nullopt, 0, 100) == Liveness::kUnknown);
}

TEST_CASE("a process read from /proc is alive, gone (zombie) or reused (another start time)") {
  CHECK(judge_liveness(stat_with('S', 100), 0, 100) == Liveness::kAlive);
  CHECK(judge_liveness(stat_with('R', 100), 0, 100) == Liveness::kAlive);
  CHECK(judge_liveness(stat_with('Z', 100), 0, 100) == Liveness::kGone);
  CHECK(judge_liveness(stat_with('X', 100), 0, 100) == Liveness::kGone);
  CHECK(judge_liveness(stat_with('S', 101), 0, 100) == Liveness::kReused);
  CHECK(judge_liveness(stat_with('Z', 101), 0, 100) == Liveness::kReused);
  // No start time recorded: any live process with the pid counts as it.
  CHECK(judge_liveness(stat_with('S', 101), 0, 0) == Liveness::kAlive);
  CHECK(judge_liveness(stat_with('Z', 101), 0, 0) == Liveness::kGone);
}

TEST_CASE("our own process is alive with its start time and not with another") {
  const auto self = read_proc_stat(::getpid());
  REQUIRE(self.has_value());
  CHECK(check_liveness(::getpid(), self->start_time) == Liveness::kAlive);
  CHECK(check_liveness(::getpid(), 0) == Liveness::kAlive);
  CHECK(check_liveness(::getpid(), self->start_time + 1) == Liveness::kReused);
  CHECK(check_liveness(0, 0) == Liveness::kGone);
  CHECK(pin_process(0, 0).liveness == Liveness::kGone);
}

TEST_CASE("pinning a live process gives its pidfd and start time; a reaped one is gone") {
  std::uint64_t start_time = 0;
  pid_t pid = 0;
  {
    Sleeper child;
    pid = child.pid;
    const auto stat = read_proc_stat(child.pid);
    REQUIRE(stat);
    start_time = stat->start_time;
    const auto pinned = pin_process(child.pid, start_time);
    CHECK(pinned.liveness == Liveness::kAlive);
    CHECK(pinned.start_time == start_time);
    REQUIRE(pinned.pidfd.get() >= 0);
    CHECK((::fcntl(pinned.pidfd.get(), F_GETFD) & FD_CLOEXEC) != 0);
  }
  const auto pinned = pin_process(pid, start_time);
  CHECK(pinned.liveness != Liveness::kAlive);
  CHECK(pinned.liveness != Liveness::kUnknown);
  CHECK(pinned.pidfd.get() < 0);
}

TEST_CASE("out of descriptors, a live process is unknown, never gone") {
  Sleeper child;
  const auto stat = read_proc_stat(child.pid);
  REQUIRE(stat);
  DescriptorPressure pressure;
  CHECK(check_liveness(child.pid, stat->start_time) == Liveness::kUnknown);
  CHECK(check_liveness(::getpid(), 0) == Liveness::kUnknown);
  const auto pinned = pin_process(child.pid, stat->start_time);
  CHECK(pinned.liveness == Liveness::kUnknown);
  CHECK(pinned.error == EMFILE);
  CHECK(pinned.pidfd.get() < 0);
  pressure.release();
  CHECK(check_liveness(child.pid, stat->start_time) == Liveness::kAlive);
}

TEST_CASE("an exit watch backs off from 50 ms to at most 2 s") {
  CHECK(watch_retry_delay(1) == std::chrono::milliseconds(50));
  CHECK(watch_retry_delay(2) == std::chrono::milliseconds(100));
  CHECK(watch_retry_delay(3) == std::chrono::milliseconds(200));
  for (unsigned failures = 1; failures < 100; ++failures) {
    CHECK(watch_retry_delay(failures) <= watch_retry_delay(failures + 1));
    CHECK(watch_retry_delay(failures) <= std::chrono::milliseconds(2000));
  }
  CHECK(watch_retry_delay(1000) == std::chrono::milliseconds(2000));
}

TEST_CASE("an exit watch without descriptors keeps trying and reports only the real exit") {
  boost::asio::io_context io;
  // lpd's event loop has its epoll and eventfd long before any pressure;
  // Asio makes them with the first I/O object.
  boost::asio::steady_timer reactor_made_before_the_pressure(io);
  Sleeper child;
  const auto stat = read_proc_stat(child.pid);
  REQUIRE(stat);
  bool fired = false;
  std::shared_ptr<ExitWatch> watch;
  {
    DescriptorPressure pressure;
    watch = ExitWatch::start(io, child.pid, stat->start_time, [&](const ExitStatus&) { fired = true; });
    // Each failed attempt is an event of the loop (its backoff timer).
    while (watch->failures() < 3) io.run_one();
    CHECK_FALSE(fired);
    CHECK(watch->pidfd() < 0);
  }
  // Descriptors are free again: the next attempt gets the pidfd.
  while (watch->pidfd() < 0) io.run_one();
  CHECK(watch->failures() == 0);
  CHECK_FALSE(fired);
  ::kill(child.pid, SIGKILL);
  while (!fired) io.run_one();
  CHECK(fired);
}

TEST_CASE("an exit watch of a process already gone fires soon, and of a reused pid too") {
  boost::asio::io_context io;
  bool fired = false;
  auto gone = ExitWatch::start(io, 0, 0, [&](const ExitStatus&) { fired = true; });
  while (!fired) io.run_one();
  fired = false;
  io.restart();  // it stopped when it ran out of work
  const auto self = read_proc_stat(::getpid());
  REQUIRE(self);
  auto reused = ExitWatch::start(io, ::getpid(), self->start_time + 1, [&](const ExitStatus&) { fired = true; });
  while (!fired) io.run_one();
  CHECK(reused->pidfd() < 0);
}

TEST_CASE("a resource shortage is named with its errno") {
  CHECK(is_resource_shortage(EMFILE));
  CHECK(is_resource_shortage(ENFILE));
  CHECK_FALSE(is_resource_shortage(ESRCH));
  CHECK_FALSE(is_resource_shortage(EACCES));
  CHECK(describe_shortage(EMFILE) == "lpd is out of file descriptors (EMFILE)");
  CHECK(describe_shortage(ENFILE) == "the system is out of file descriptors (ENFILE)");
}
