#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "daemon/transport/ring_poller.h"

using lpd::daemon::RingPoller;
using namespace std::chrono_literals;

namespace {

/// A connection's ring as the poller sees it: `pending` records wait, and
/// what the poller did is logged in order.
struct FakeSource : RingPoller::Source {
  std::string name;
  std::vector<std::string>& log;
  std::size_t pending = 0;
  bool has_ring = true;
  std::uint64_t read_by = 0;
  std::size_t reads = 0;

  FakeSource(std::string n, std::vector<std::string>& l) : name(std::move(n)), log(l) {}
  std::optional<std::size_t> read_ring() override {
    if (!has_ring) return std::nullopt;
    ++reads;
    const auto n = pending;
    pending = 0;
    log.push_back("read " + name + " " + std::to_string(n));
    return n;
  }
  void commit_ring() override { log.push_back("commit " + name); }
  void promise_ring_read_by(std::uint64_t ns) override { read_by = ns; }
};

/// Runs `io` until `done` holds (each handler is one tick at most), or 5 s.
template <class Done>
void run_until(boost::asio::io_context& io, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  io.restart();
  while (!done() && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
}

}  // namespace

TEST_CASE("one tick reads every woken ring, writes the journals once, then commits", "[ring_poller]") {
  boost::asio::io_context io;
  std::vector<std::string> log;
  RingPoller poller(io.get_executor(), 20ms, [&] { log.push_back("end of batch"); });
  auto a = std::make_shared<FakeSource>("a", log);
  auto b = std::make_shared<FakeSource>("b", log);
  const auto before = RingPoller::monotonic_ns(RingPoller::Clock::now());
  poller.keep_reading(a);
  poller.keep_reading(b);
  // Both were promised the same tick, at most a window away.
  CHECK(a->read_by == b->read_by);
  CHECK(a->read_by >= before);
  CHECK(a->read_by <= RingPoller::monotonic_ns(RingPoller::Clock::now() + 20ms));
  a->pending = 2;
  b->pending = 1;
  run_until(io, [&] { return a->reads == 1; });
  REQUIRE(log == std::vector<std::string>{"read a 2", "read b 1", "end of batch", "commit a", "commit b"});
  // Still read on the next tick, which is what the read-by word now says.
  CHECK(poller.polled() == 2);
  CHECK(a->read_by > before + 20'000'000 - 1);
}

TEST_CASE("a ring leaves the ticks after an empty read a window after its wake-up", "[ring_poller]") {
  boost::asio::io_context io;
  std::vector<std::string> log;
  int batches = 0;
  RingPoller poller(io.get_executor(), 20ms, [&] { ++batches; });
  auto a = std::make_shared<FakeSource>("a", log);
  const auto woken = RingPoller::Clock::now();
  poller.keep_reading(a);
  run_until(io, [&] { return poller.polled() == 0; });
  REQUIRE(poller.polled() == 0);
  // Nothing was ever written: no journal write, and the read that let it go
  // came a window after the wake-up (a shim that wakes lpd at most once per
  // window has everything it wrote since read by then).
  CHECK(batches == 0);
  CHECK(RingPoller::Clock::now() - woken >= 20ms);
  const auto last_promise = a->read_by;
  CHECK(last_promise <= RingPoller::monotonic_ns(RingPoller::Clock::now()));  // past: the next record wakes lpd
  // A new wake-up brings it back.
  a->pending = 1;
  poller.keep_reading(a);
  CHECK(a->read_by > last_promise);
  run_until(io, [&] { return batches == 1; });
  CHECK(batches == 1);
}

TEST_CASE("a ring that keeps getting records stays on the ticks", "[ring_poller]") {
  boost::asio::io_context io;
  std::vector<std::string> log;
  RingPoller poller(io.get_executor(), 10ms, [] {});
  auto a = std::make_shared<FakeSource>("a", log);
  poller.keep_reading(a);
  for (int tick = 0; tick < 5; ++tick) {
    a->pending = 1;
    const auto reads = a->reads;
    run_until(io, [&] { return a->reads > reads; });
    REQUIRE(poller.polled() == 1);
  }
  CHECK(a->reads == 5);
}

TEST_CASE("a busy ring is promised the next tick plus grace; it leaves only once that promise is past",
          "[ring_poller]") {
  boost::asio::io_context io;
  std::vector<std::string> log;
  RingPoller poller(io.get_executor(), 20ms, [] {});
  REQUIRE(poller.grace() == 4ms);
  auto a = std::make_shared<FakeSource>("a", log);
  poller.keep_reading(a);
  const auto first_tick = a->read_by;  // a wake-up: the bare next tick
  a->pending = 3;
  run_until(io, [&] { return a->reads == 1; });
  REQUIRE(a->reads == 1);
  // Records were read: the word is the next tick (a window after this one
  // began, or later) plus grace, so a shim writing while that tick is late
  // does not wake lpd for it.
  const auto busy_promise = a->read_by;
  CHECK(busy_promise >= first_tick + 20'000'000 + 4'000'000);
  // The next tick finds nothing, but the promise may still be ahead of it:
  // the ring stays, now promised the bare tick after.
  run_until(io, [&] { return a->reads == 2; });
  REQUIRE(a->reads == 2);
  if (poller.polled() == 1) {
    CHECK(a->read_by > busy_promise);
    CHECK(a->read_by >= RingPoller::monotonic_ns(RingPoller::Clock::now()));
  }
  // It leaves on an empty read once its word is past, and keeps that past
  // word: the next record wakes lpd.
  run_until(io, [&] { return poller.polled() == 0; });
  REQUIRE(poller.polled() == 0);
  CHECK(a->read_by <= RingPoller::monotonic_ns(RingPoller::Clock::now()));
  // Every read after the busy one started at or after the word it kept.
  CHECK(a->reads >= 2);
}

TEST_CASE("a ring is never let go while its read-by word is ahead", "[ring_poller]") {
  // Whatever the ticks' timing: each time the poller lets a ring go, its
  // word is already past, so a record published after that last read woke
  // lpd (the shim's rule), and one published before was read.
  boost::asio::io_context io;
  std::vector<std::string> log;
  RingPoller poller(io.get_executor(), 5ms, [] {});
  auto a = std::make_shared<FakeSource>("a", log);
  for (int round = 0; round < 20; ++round) {
    a->pending = 1 + round % 3;
    poller.keep_reading(a);
    run_until(io, [&] { return poller.polled() == 0; });
    REQUIRE(poller.polled() == 0);
    CHECK(a->read_by <= RingPoller::monotonic_ns(RingPoller::Clock::now()));
    CHECK(a->pending == 0);
  }
}

TEST_CASE("a closed connection or a detached ring drops out", "[ring_poller]") {
  boost::asio::io_context io;
  std::vector<std::string> log;
  RingPoller poller(io.get_executor(), 10ms, [] {});
  auto a = std::make_shared<FakeSource>("a", log);
  auto b = std::make_shared<FakeSource>("b", log);
  poller.keep_reading(a);
  poller.keep_reading(b);
  b->has_ring = false;
  a.reset();
  run_until(io, [&] { return poller.polled() == 0; });
  CHECK(poller.polled() == 0);
  CHECK(log.empty());  // neither was read nor committed
}
