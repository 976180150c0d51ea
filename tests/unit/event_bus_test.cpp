#include <catch2/catch.hpp>

#include "daemon/event_bus.h"

using namespace lpd::daemon;

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
  bus.drop_session(7);
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
