// The event ring's phase mark (protocol::PhaseMark): the shim's word in
// memory it controls, believed only when it names the test.start lpd read
// last from that ring (issue 13, one record per phase saved).
#include <catch2/catch.hpp>

#include <optional>

#include "daemon/crashes/worker_activity.h"
#include "protocol/event_ring.h"

using lpd::daemon::ExitStatus;
using lpd::daemon::WorkerActivity;
using lpd::protocol::decode_phase_mark;
using lpd::protocol::PhaseMark;

TEST_CASE("a phase mark word decodes to its start position and one of three phases") {
  CHECK_FALSE(decode_phase_mark(0));  // nothing marked yet
  CHECK_FALSE(decode_phase_mark((77u << 8) | 4));
  CHECK_FALSE(decode_phase_mark((77u << 8) | 0xff));
  const auto call = decode_phase_mark((77u << 8) | 2);
  REQUIRE(call);
  CHECK(call->start_position == 77);
  CHECK(call->phase == "call");
  CHECK(decode_phase_mark(1)->phase == "setup");
  CHECK(decode_phase_mark(3)->phase == "teardown");
  CHECK(decode_phase_mark((~0ull & ~0xffull) | 3)->start_position == (~0ull >> 8));
}

TEST_CASE("the running test's phase comes from the mark only when the mark names its test.start") {
  std::optional<std::uint64_t> word;
  WorkerActivity a("run-1", "gw0", 4242, 1000, 1);
  a.watch_phase_marks([&word]() -> std::optional<PhaseMark> {
    if (!word) return std::nullopt;
    return decode_phase_mark(*word);
  });
  a.test_started("t.py::test_a", 10.0, /*ring_position=*/0);
  CHECK(a.current_phase() == "setup");
  word = (0u << 8) | 2;
  CHECK(a.current_phase() == "call");
  word = (0u << 8) | 3;
  CHECK(a.current_phase() == "teardown");
  a.test_finished("t.py::test_a");
  CHECK(a.current_phase().empty());

  SECTION("a mark left by the test before is not the next test's") {
    a.test_started("t.py::test_b", 11.0, /*ring_position=*/96);
    CHECK(a.current_phase() == "setup");  // the word still names test_a's start
    const auto crash = a.crash_on(ExitStatus{11, std::nullopt}, 12.0);
    REQUIRE(crash);
    CHECK(crash->nodeid == "t.py::test_b");
    CHECK(crash->phase == "setup");
    word = (96u << 8) | 2;
    CHECK(a.crash_on(ExitStatus{11, std::nullopt}, 12.0)->phase == "call");
  }
  SECTION("a forged mark naming another position is ignored; test.phase still counts") {
    a.test_started("t.py::test_b", 11.0, /*ring_position=*/96);
    word = (95u << 8) | 3;
    CHECK(a.current_phase() == "setup");
    a.phase("call");  // a test.phase record (a start that went on the socket, an older shim)
    CHECK(a.current_phase() == "call");
  }
  SECTION("settled when the connection ends, the phase outlives the ring's mapping") {
    a.test_started("t.py::test_b", 11.0, /*ring_position=*/96);
    word = (96u << 8) | 3;
    a.settle_phase();
    word.reset();  // the mapping is gone: the source has nothing to say
    CHECK(a.current_phase() == "teardown");
    CHECK(a.crash_on(ExitStatus{6, std::nullopt}, 12.0)->phase == "teardown");
  }
  SECTION("a test.start that came on the socket has no position: marks are not read for it") {
    word = (0u << 8) | 3;
    a.test_started("t.py::test_c", 11.0, std::nullopt);
    CHECK(a.current_phase() == "setup");
  }
}
