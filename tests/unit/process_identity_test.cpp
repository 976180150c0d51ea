#include <catch2/catch.hpp>

#include <unistd.h>

#include "daemon/process_identity.h"

using namespace lpd::daemon;

TEST_CASE("proc stat parsing survives spaces and parentheses in the command name") {
  const std::string text =
      "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615";
  auto id = parse_proc_stat(text);
  REQUIRE(id.has_value());
  CHECK(id->state == 'S');
  CHECK(id->start_time == 987654);
  CHECK_FALSE(parse_proc_stat("garbage").has_value());
  CHECK_FALSE(parse_proc_stat("1 (x) S 1 2").has_value());
}

TEST_CASE("our own process is alive with its start time and not with another") {
  auto self = read_process_identity(::getpid());
  REQUIRE(self.has_value());
  CHECK(same_process_alive(::getpid(), self->start_time));
  CHECK(same_process_alive(::getpid(), 0));
  CHECK_FALSE(same_process_alive(::getpid(), self->start_time + 1));
  CHECK_FALSE(same_process_alive(0, 0));
}
