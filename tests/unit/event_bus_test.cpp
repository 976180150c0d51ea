#include <catch2/catch.hpp>

#include "daemon/core/event_bus.h"
#include "daemon/core/peer.h"
#include "protocol/error.h"
#include "tests/unit/code_of.h"

using namespace lpd::daemon;

namespace {

/// The peer of connection `session`, gone.
Peer peer_in_session(std::uint64_t session) {
  Peer peer;
  peer.session_id = session;
  return peer;
}

}  // namespace

TEST_CASE("events reach subscribers in order with increasing sequence numbers") {
  EventBus bus;
  std::vector<std::uint64_t> seen;
  bus.subscribe([&](const Event& e) { seen.push_back(e.seq); }, 7);
  bus.publish("a", {{"x", 1}}, "run");
  bus.publish("b", {{"x", 2}});
  CHECK(seen == std::vector<std::uint64_t>{1, 2});
  auto data = bus.history().front().push_data();
  CHECK(data["run_id"] == "run");
  CHECK(data["x"] == 1);
  CHECK(data["seq"] == 1);
  bus.peer_gone(peer_in_session(7));
  bus.publish("c", {});
  CHECK(seen.size() == 2);
}

TEST_CASE("a subscriber may unsubscribe itself while being called") {
  EventBus bus;
  int calls = 0;
  std::uint64_t token = 0;
  token = bus.subscribe([&](const Event&) {
    ++calls;
    bus.unsubscribe(token);
  });
  bus.publish("a", {});
  bus.publish("b", {});
  CHECK(calls == 1);
}

TEST_CASE("history is bounded") {
  EventBus bus;
  for (std::size_t i = 0; i < EventBus::kHistory + 5; ++i) bus.publish("e", {});
  CHECK(bus.history().size() == EventBus::kHistory);
  CHECK(bus.history().front().seq == 6);
}

// -- filters, limits, matching ------------------------------------------------

TEST_CASE("history is bounded in bytes too, oldest first, and find() says what it no longer holds") {
  EventBus bus;
  std::size_t seen = 0;
  bus.subscribe([&](const Event& e) { seen += e.data_text().size(); });  // as the journals read every event
  const std::string big = "{\"longrepr\":\"" + std::string(1 << 20, 'x') + "\"}";  // 1 MiB of text each
  std::uint64_t first = 0, last = 0;
  for (int i = 0; i < 200; ++i) {
    const Event& e = bus.publish_text("test.finish", big, "r1");
    if (i == 0) first = e.seq;
    last = e.seq;
    CHECK(e.seq == first + static_cast<std::uint64_t>(i));  // the event just published is what it returns
  }
  CHECK(seen == 200 * big.size());  // every subscriber saw every event
  // Far fewer than 200 kept, about 64 MiB worth, the newest among them.
  CHECK(bus.history().size() < 70);
  CHECK(bus.history().size() > 50);
  CHECK(bus.history().back().seq == last);
  CHECK(bus.find(last) != nullptr);
  CHECK(bus.find(first) == nullptr);
  // Small events are still kept by the count alone.
  for (int i = 0; i < 100; ++i) bus.publish("job", {{"n", i}}, "r2");
  CHECK(bus.find(last + 100) != nullptr);
}

TEST_CASE("filtered subscriptions get exactly the events their prefixes and run match") {
  EventBus bus;
  std::vector<std::string> pauses, run_a, everything;
  bus.subscribe(EventFilter::checked("", {"pause.", "pause.c"}), [&](const Event& e) { pauses.push_back(e.type); }, 1);
  bus.subscribe(EventFilter::checked("a", {}), [&](const Event& e) { run_a.push_back(e.type); }, 1);
  bus.subscribe(EventFilter::checked("", {""}), [&](const Event& e) { everything.push_back(e.type); }, 2);
  bus.publish("pause.created", {}, "a");
  bus.publish("pause.resumed", {}, "b");
  bus.publish("job", {}, "a");
  bus.publish("paused", {});
  CHECK(pauses == std::vector<std::string>{"pause.created", "pause.resumed"});  // once each, though two prefixes match
  CHECK(run_a == std::vector<std::string>{"pause.created", "job"});
  CHECK(everything.size() == 4);
  CHECK(EventFilter::checked("", {"pause."}).matches("x", "pause.stale"));
  CHECK_FALSE(EventFilter::checked("r", {"pause."}).matches("x", "pause.stale"));
}

TEST_CASE("subscribers are called in subscription order, each once") {
  EventBus bus;
  std::vector<int> order;
  bus.subscribe(EventFilter::checked("r", {"a"}), [&](const Event&) { order.push_back(1); }, 1);
  bus.subscribe([&](const Event&) { order.push_back(2); });
  bus.subscribe(EventFilter::checked("", {"a.b", "a"}), [&](const Event&) { order.push_back(3); }, 1);
  bus.publish("a.b", {}, "r");
  CHECK(order == std::vector<int>{1, 2, 3});
}

namespace {


}  // namespace

TEST_CASE("filters past the limits are refused with limit_exceeded") {
  using lpd::protocol::ErrorCode;
  std::vector<std::string> many(EventFilter::kMaxTypes + 1, "x.");
  CHECK(code_of([&] { EventFilter::checked("", many); }) == ErrorCode::kLimitExceeded);
  many.pop_back();
  CHECK_NOTHROW(EventFilter::checked("", many));
  const std::string long_type(EventFilter::kMaxFilterBytes + 1, 'p');
  CHECK(code_of([&] { EventFilter::checked("", {long_type}); }) == ErrorCode::kLimitExceeded);
  CHECK(code_of([&] { EventFilter::checked(long_type, {}); }) == ErrorCode::kLimitExceeded);
  CHECK_NOTHROW(EventFilter::checked("", {long_type.substr(1)}));
}

TEST_CASE("a connection holds at most kMaxSubscriptionsPerSession; dropping it frees them all") {
  EventBus bus;
  int calls = 0;
  for (std::size_t i = 0; i < EventFilter::kMaxSubscriptionsPerSession; ++i)
    bus.subscribe(EventFilter::checked("", {"t" + std::to_string(i)}), [&](const Event&) { ++calls; }, 9);
  CHECK(bus.subscriptions_of(9) == EventFilter::kMaxSubscriptionsPerSession);
  CHECK(code_of([&] { bus.subscribe(EventFilter{}, [](const Event&) {}, 9); }) ==
        lpd::protocol::ErrorCode::kLimitExceeded);
  CHECK_NOTHROW(bus.subscribe(EventFilter{}, [](const Event&) {}, 10));  // another connection
  for (int i = 0; i < 100; ++i) bus.subscribe([](const Event&) {});    // lpd's own listeners: no limit
  bus.publish("t3", {});
  CHECK(calls == 1);
  bus.peer_gone(peer_in_session(9));
  CHECK(bus.subscriptions_of(9) == 0);
  bus.publish("t3", {});
  CHECK(calls == 1);
  CHECK_NOTHROW(bus.subscribe(EventFilter{}, [](const Event&) {}, 9));
}

TEST_CASE("the history is found by seq while it keeps the event") {
  EventBus bus;
  CHECK(bus.last_seq() == 0);
  CHECK(bus.find(1) == nullptr);
  for (std::size_t i = 0; i < EventBus::kHistory + 3; ++i) bus.publish("e", {{"i", i}});
  CHECK(bus.last_seq() == EventBus::kHistory + 3);
  CHECK(bus.find(3) == nullptr);
  REQUIRE(bus.find(4) != nullptr);
  CHECK(bus.find(4)->data()["i"] == 3);
  CHECK(bus.find(bus.last_seq())->seq == bus.last_seq());
  CHECK(bus.find(bus.last_seq() + 1) == nullptr);
}

TEST_CASE("thousands of filters that never match: an event reaches only the one that does") {
  // Many subscriptions whose filters never match: a published event must
  // reach none of their callbacks and look at none of their prefixes.
  EventBus bus;
  int wrong = 0, right = 0;
  for (int s = 0; s < 2000; ++s) {
    std::vector<std::string> types;
    for (std::size_t t = 0; t < EventFilter::kMaxTypes; ++t)
      types.push_back("never." + std::to_string(s) + "." + std::to_string(t));
    bus.subscribe(EventFilter::checked("", types), [&](const Event&) { ++wrong; }, 1000 + s);
  }
  bus.subscribe(EventFilter::checked("", {"job"}), [&](const Event&) { ++right; }, 1);
  for (int i = 0; i < 1000; ++i) bus.publish("job", {});
  CHECK(wrong == 0);
  CHECK(right == 1000);
}

TEST_CASE("limit_exceeded is a stable error code name") {
  CHECK(lpd::protocol::to_string(lpd::protocol::ErrorCode::kLimitExceeded) == "limit_exceeded");
  CHECK(lpd::protocol::error_code_from_string("limit_exceeded") == lpd::protocol::ErrorCode::kLimitExceeded);
}

TEST_CASE("a subscription's filter is asked through its token, and matches nothing once it is gone") {
  EventBus bus;
  const auto token = bus.subscribe(EventFilter::checked("r", {"pause."}), [](const Event&) {}, 3);
  const Event& pause = bus.publish("pause.created", {}, "r");
  const Event& other = bus.publish("pause.created", {}, "s");
  CHECK(bus.matches(token, pause));
  CHECK_FALSE(bus.matches(token, other));
  bus.unsubscribe(token);
  CHECK_FALSE(bus.matches(token, pause));
}

// -- h13cpu (issue 13): the bus remembers the last matches, never stale ------

TEST_CASE("a subscription that comes or goes changes who gets an event matched before") {
  EventBus bus;
  std::vector<std::string> first, second;
  const auto a = bus.subscribe(EventFilter::checked("r", {"test."}), [&](const Event& e) { first.push_back(e.type); }, 1);
  bus.publish("test.start", {}, "r");  // matched (and remembered) with one subscriber
  bus.publish("test.start", {}, "other");
  const auto b = bus.subscribe(EventFilter::checked("", {"test.start"}), [&](const Event& e) { second.push_back(e.run_id); }, 2);
  bus.publish("test.start", {}, "r");
  bus.publish("test.start", {}, "other");
  bus.unsubscribe(a);
  bus.publish("test.start", {}, "r");
  bus.unsubscribe(b);
  bus.publish("test.start", {}, "r");
  // More (run, type) pairs than the bus remembers: each still matched right.
  const auto c = bus.subscribe(EventFilter::checked("", {"t"}), [&](const Event& e) { first.push_back(e.type + "@" + e.run_id); }, 3);
  for (int round = 0; round < 3; ++round)
    for (const char* run : {"1", "2", "3", "4", "5", "6"}) bus.publish("t" + std::string(run), {}, run);
  bus.unsubscribe(c);
  bus.publish("t1", {}, "1");
  CHECK(second == std::vector<std::string>{"r", "other", "r"});
  REQUIRE(first.size() == 2 + 18);
  CHECK(first[0] == "test.start");
  CHECK(first[1] == "test.start");
  CHECK(first[2] == "t1@1");
  CHECK(first.back() == "t6@6");
}
