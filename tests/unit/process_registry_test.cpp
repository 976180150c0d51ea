#include <catch2/catch.hpp>

#include <set>

#include "daemon/process/process_registry.h"

using namespace lpd::daemon;
using lpd::protocol::ErrorCode;

namespace {

/// A registry whose idea of "alive" the test decides.
struct Fixture {
  Liveness liveness = Liveness::kAlive;
  ProcessRegistry registry{[this](pid_t, std::uint64_t) { return liveness; }};

  std::uint64_t start(const std::string& name, pid_t pid = 100) {
    SupervisedProcess record;
    record.name = name;
    record.pid = pid;
    record.start_time = 42;
    return registry.begin(record);
  }
};

/// Records what each waiter was told.
struct Answers {
  int ready = 0;
  std::vector<std::string> failures;
  ProcessRegistry::Waiter waiter() {
    return [this](const SupervisedProcess&, const StartFailure* f) {
      if (f) {
        failures.push_back(f->message);
      } else {
        ++ready;
      }
    };
  }
};

}  // namespace

TEST_CASE("the lifecycle table has one row per (state, event) and no row leaves an ended state") {
  std::set<std::pair<int, int>> seen;
  for (const auto& t : lifecycle()) {
    CHECK(seen.insert({static_cast<int>(t.from), static_cast<int>(t.event)}).second);
    CHECK(is_running(t.from));
  }
}

TEST_CASE("state names round-trip") {
  for (auto s : {ProcState::kStarting, ProcState::kReady, ProcState::kStopping, ProcState::kExited,
                 ProcState::kKilled, ProcState::kLost})
    CHECK(proc_state_from_string(to_string(s)) == s);
  CHECK_FALSE(proc_state_from_string("zombie"));
}

TEST_CASE_METHOD(Fixture, "all waiters of one start share its readiness") {
  Answers answers;
  const auto gen = start("db");
  for (int i = 0; i < 4; ++i) registry.add_waiter("db", answers.waiter());
  CHECK(registry.plan_ensure("db", false) == EnsurePlan::kJoin);
  const auto step = registry.fire("db", gen, ProcEvent::kMatched);
  REQUIRE(step);
  CHECK(step->action == ProcAction::kAnswerReady);
  CHECK(answers.ready == 4);
  CHECK(registry.find("db")->state == ProcState::kReady);
  CHECK(registry.waiters("db") == 0);
}

TEST_CASE_METHOD(Fixture, "a ready process is reused only while alive") {
  const auto gen = start("db");
  registry.fire("db", gen, ProcEvent::kMatched);
  CHECK(registry.plan_ensure("db", false) == EnsurePlan::kReuse);
  CHECK(registry.plan_ensure("db", true) == EnsurePlan::kStopThenStart);
  liveness = Liveness::kGone;
  CHECK(registry.plan_ensure("db", false) == EnsurePlan::kStart);
  liveness = Liveness::kReused;
  CHECK(registry.plan_ensure("db", false) == EnsurePlan::kStart);
  CHECK(registry.plan_ensure("other", false) == EnsurePlan::kStart);
}

TEST_CASE_METHOD(Fixture, "a ready process lpd cannot look at (EMFILE) is reused, not started twice") {
  const auto gen = start("db");
  registry.fire("db", gen, ProcEvent::kMatched);
  liveness = Liveness::kUnknown;
  CHECK(registry.plan_ensure("db", false) == EnsurePlan::kReuse);
  CHECK(registry.plan_ensure("db", true) == EnsurePlan::kStopThenStart);
}

TEST_CASE_METHOD(Fixture, "an exit before the pattern fails the waiters at once") {
  Answers answers;
  const auto gen = start("db");
  registry.add_waiter("db", answers.waiter());
  const StartFailure why{ErrorCode::kUnavailable, "exited with exit code 3"};
  const auto step = registry.fire("db", gen, ProcEvent::kExited, &why);
  REQUIRE(step);
  CHECK(step->action == ProcAction::kFailStart);
  CHECK(step->to == ProcState::kExited);
  REQUIRE(answers.failures.size() == 1);
  CHECK(answers.failures[0] == "exited with exit code 3");
  CHECK(registry.plan_ensure("db", false) == EnsurePlan::kStart);
}

TEST_CASE_METHOD(Fixture, "a timeout kills unless kept, and a kill ends as killed") {
  Answers answers;
  auto gen = start("db");
  registry.add_waiter("db", answers.waiter());
  auto step = registry.fire("db", gen, ProcEvent::kTimedOut);
  REQUIRE(step);
  CHECK(step->action == ProcAction::kFailStartAndKill);
  CHECK(registry.find("db")->state == ProcState::kStopping);
  CHECK(answers.failures.size() == 1);
  CHECK(registry.plan_ensure("db", false) == EnsurePlan::kStopThenStart);
  step = registry.fire("db", gen, ProcEvent::kExited);
  REQUIRE(step);
  CHECK(step->to == ProcState::kKilled);

  gen = start("db");
  step = registry.fire("db", gen, ProcEvent::kTimedOutKept);
  REQUIRE(step);
  CHECK(step->to == ProcState::kStarting);
  CHECK(step->action == ProcAction::kFailStart);
  // It may still become ready later.
  CHECK(registry.fire("db", gen, ProcEvent::kMatched));
  CHECK(registry.find("db")->state == ProcState::kReady);
}

TEST_CASE_METHOD(Fixture, "events the table does not list, and stale generations, are ignored") {
  const auto old_gen = start("db");
  registry.fire("db", old_gen, ProcEvent::kMatched);
  CHECK_FALSE(registry.fire("db", old_gen, ProcEvent::kMatched));   // a second match
  CHECK_FALSE(registry.fire("db", old_gen, ProcEvent::kTimedOut));  // a timer that lost the race
  registry.fire("db", old_gen, ProcEvent::kExited);
  const auto new_gen = start("db");
  CHECK(new_gen != old_gen);
  CHECK_FALSE(registry.fire("db", old_gen, ProcEvent::kExited));  // the old incarnation's watch
  CHECK(registry.find("db")->state == ProcState::kStarting);
}

TEST_CASE_METHOD(Fixture, "waiters queued while stopping survive into the next start") {
  Answers answers;
  auto gen = start("db");
  registry.fire("db", gen, ProcEvent::kMatched);
  CHECK(registry.fire("db", gen, ProcEvent::kKillRequested)->action == ProcAction::kKill);
  CHECK(registry.fire("db", gen, ProcEvent::kKillRequested)->action == ProcAction::kNone);
  registry.add_waiter("db", answers.waiter());
  registry.fire("db", gen, ProcEvent::kExited);
  CHECK(answers.failures.empty());
  CHECK(answers.ready == 0);
  gen = start("db");
  CHECK(registry.waiters("db") == 1);
  registry.fire("db", gen, ProcEvent::kMatched);
  CHECK(answers.ready == 1);
}

TEST_CASE_METHOD(Fixture, "a kill while starting fails the waiters") {
  Answers answers;
  const auto gen = start("db");
  registry.add_waiter("db", answers.waiter());
  const StartFailure why{ErrorCode::kConflict, "killed while starting"};
  const auto step = registry.fire("db", gen, ProcEvent::kKillRequested, &why);
  REQUIRE(step);
  CHECK(step->action == ProcAction::kFailStartAndKill);
  CHECK(answers.failures == std::vector<std::string>{"killed while starting"});
}
