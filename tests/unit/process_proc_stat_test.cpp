#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>

#include "daemon/logs/log_file.h"
#include "daemon/os/proc_stat.h"

using namespace lpd::daemon;

TEST_CASE("/proc/PID/stat is parsed even when the command name holds spaces and parentheses") {
  const std::string text =
      "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 "
      "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  const auto stat = parse_proc_stat_text(text);
  REQUIRE(stat);
  CHECK(stat->pid == 4242);
  CHECK(stat->state == 'S');
  CHECK(stat->ppid == 1);
  CHECK(stat->pgrp == 4242);
  CHECK(stat->session == 4242);
  CHECK(stat->start_time == 987654);
  CHECK_FALSE(stat->gone());
  CHECK_FALSE(parse_proc_stat_text("garbage"));
  CHECK_FALSE(parse_proc_stat_text("1 (x) S 1 2"));
}

TEST_CASE("a zombie counts as gone, another start time as reused") {
  const auto self = read_proc_stat(::getpid());
  REQUIRE(self);
  CHECK(check_liveness(::getpid(), self->start_time) == Liveness::kAlive);
  CHECK(check_liveness(::getpid(), self->start_time + 1) == Liveness::kReused);

  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  const auto child_stat = read_proc_stat(child);
  REQUIRE(child_stat);
  // Wait until it is a zombie without reaping it (WNOWAIT).
  siginfo_t info{};
  REQUIRE(::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT) == 0);
  CHECK(check_liveness(child, child_stat->start_time) == Liveness::kGone);
  int status;
  ::waitpid(child, &status, 0);
  CHECK(check_liveness(child, child_stat->start_time) == Liveness::kGone);
}

TEST_CASE("the last N lines are found by reading backwards") {
  char path[] = "/tmp/lpd-lines-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  const std::string text = "one\ntwo\nthree\n";
  REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  ::close(fd);
  const auto size = file_size(path);
  CHECK(size == text.size());
  CHECK(offset_of_last_lines(path, 1, size) == 8);
  CHECK(offset_of_last_lines(path, 2, size) == 4);
  CHECK(offset_of_last_lines(path, 3, size) == 0);
  CHECK(offset_of_last_lines(path, 10, size) == 0);
  CHECK(offset_of_last_lines(path, 0, size) == size);
  CHECK(offset_of_last_lines(path, 1, 7) == 4);  // "two" without its newline is the last line
  ::unlink(path);
}
