#include <catch2/catch.hpp>

#include <functional>
#include <set>

#include <fmt/format.h>

#include "daemon/processes/process_registry.h"
#include "tests/unit/started_helpers.h"
#include "tests/unit/code_of.h"

using namespace lpd::daemon;
using lpd::protocol::ErrorCode;

namespace {

/// The helper NAME of uid 0 in the global scope.
ProcessKey K(const std::string& name) { return {0, "", name}; }

/// A registry whose idea of "alive" the test decides.
struct RegistryFixture {
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
  for (auto s : {ProcessState::kStarting, ProcessState::kReady, ProcessState::kStopping, ProcessState::kExited,
                 ProcessState::kKilled, ProcessState::kLost})
    CHECK(proc_state_from_string(to_string(s)) == s);
  CHECK_FALSE(proc_state_from_string("zombie"));
}

TEST_CASE_METHOD(RegistryFixture, "all waiters of one start share its readiness") {
  Answers answers;
  const auto gen = start("db");
  for (int i = 0; i < 4; ++i) registry.add_waiter(K("db"), answers.waiter());
  CHECK(registry.plan_ensure(K("db"), false) == EnsurePlan::kJoin);
  const auto step = registry.fire(K("db"), gen, ProcessEvent::kMatched);
  REQUIRE(step);
  CHECK(step->action == ProcessAction::kAnswerReady);
  CHECK(answers.ready == 4);
  CHECK(registry.find(K("db"))->state == ProcessState::kReady);
  CHECK(registry.waiters(K("db")) == 0);
}

TEST_CASE_METHOD(RegistryFixture, "a ready process is reused only while alive") {
  const auto gen = start("db");
  registry.fire(K("db"), gen, ProcessEvent::kMatched);
  CHECK(registry.plan_ensure(K("db"), false) == EnsurePlan::kReuse);
  CHECK(registry.plan_ensure(K("db"), true) == EnsurePlan::kStopThenStart);
  liveness = Liveness::kGone;
  CHECK(registry.plan_ensure(K("db"), false) == EnsurePlan::kStart);
  liveness = Liveness::kReused;
  CHECK(registry.plan_ensure(K("db"), false) == EnsurePlan::kStart);
  CHECK(registry.plan_ensure(K("other"), false) == EnsurePlan::kStart);
}

TEST_CASE_METHOD(RegistryFixture, "a ready process lpd cannot look at (EMFILE) is reused, not started twice") {
  const auto gen = start("db");
  registry.fire(K("db"), gen, ProcessEvent::kMatched);
  liveness = Liveness::kUnknown;
  CHECK(registry.plan_ensure(K("db"), false) == EnsurePlan::kReuse);
  CHECK(registry.plan_ensure(K("db"), true) == EnsurePlan::kStopThenStart);
}

TEST_CASE_METHOD(RegistryFixture, "an exit before the pattern fails the waiters at once") {
  Answers answers;
  const auto gen = start("db");
  registry.add_waiter(K("db"), answers.waiter());
  const StartFailure why{ErrorCode::kUnavailable, "exited with exit code 3"};
  const auto step = registry.fire(K("db"), gen, ProcessEvent::kExited, &why);
  REQUIRE(step);
  CHECK(step->action == ProcessAction::kFailStart);
  CHECK(step->to == ProcessState::kExited);
  REQUIRE(answers.failures.size() == 1);
  CHECK(answers.failures[0] == "exited with exit code 3");
  CHECK(registry.plan_ensure(K("db"), false) == EnsurePlan::kStart);
}

TEST_CASE_METHOD(RegistryFixture, "a timeout kills unless kept, and a kill ends as killed") {
  Answers answers;
  auto gen = start("db");
  registry.add_waiter(K("db"), answers.waiter());
  auto step = registry.fire(K("db"), gen, ProcessEvent::kTimedOut);
  REQUIRE(step);
  CHECK(step->action == ProcessAction::kFailStartAndKill);
  CHECK(registry.find(K("db"))->state == ProcessState::kStopping);
  CHECK(answers.failures.size() == 1);
  CHECK(registry.plan_ensure(K("db"), false) == EnsurePlan::kStopThenStart);
  step = registry.fire(K("db"), gen, ProcessEvent::kExited);
  REQUIRE(step);
  CHECK(step->to == ProcessState::kKilled);

  gen = start("db");
  step = registry.fire(K("db"), gen, ProcessEvent::kTimedOutKept);
  REQUIRE(step);
  CHECK(step->to == ProcessState::kStarting);
  CHECK(step->action == ProcessAction::kFailStart);
  // It may still become ready later.
  CHECK(registry.fire(K("db"), gen, ProcessEvent::kMatched));
  CHECK(registry.find(K("db"))->state == ProcessState::kReady);
}

TEST_CASE_METHOD(RegistryFixture, "events the table does not list, and stale generations, are ignored") {
  const auto old_gen = start("db");
  registry.fire(K("db"), old_gen, ProcessEvent::kMatched);
  CHECK_FALSE(registry.fire(K("db"), old_gen, ProcessEvent::kMatched));   // a second match
  CHECK_FALSE(registry.fire(K("db"), old_gen, ProcessEvent::kTimedOut));  // a timer that lost the race
  registry.fire(K("db"), old_gen, ProcessEvent::kExited);
  const auto new_gen = start("db");
  CHECK(new_gen != old_gen);
  CHECK_FALSE(registry.fire(K("db"), old_gen, ProcessEvent::kExited));  // the old incarnation's watch
  CHECK(registry.find(K("db"))->state == ProcessState::kStarting);
}

TEST_CASE_METHOD(RegistryFixture, "waiters queued while stopping survive into the next start") {
  Answers answers;
  auto gen = start("db");
  registry.fire(K("db"), gen, ProcessEvent::kMatched);
  CHECK(registry.fire(K("db"), gen, ProcessEvent::kKillRequested)->action == ProcessAction::kKill);
  CHECK(registry.fire(K("db"), gen, ProcessEvent::kKillRequested)->action == ProcessAction::kNone);
  registry.add_waiter(K("db"), answers.waiter());
  registry.fire(K("db"), gen, ProcessEvent::kExited);
  CHECK(answers.failures.empty());
  CHECK(answers.ready == 0);
  gen = start("db");
  CHECK(registry.waiters(K("db")) == 1);
  registry.fire(K("db"), gen, ProcessEvent::kMatched);
  CHECK(answers.ready == 1);
}

TEST_CASE_METHOD(RegistryFixture, "a kill while starting fails the waiters") {
  Answers answers;
  const auto gen = start("db");
  registry.add_waiter(K("db"), answers.waiter());
  const StartFailure why{ErrorCode::kConflict, "killed while starting"};
  const auto step = registry.fire(K("db"), gen, ProcessEvent::kKillRequested, &why);
  REQUIRE(step);
  CHECK(step->action == ProcessAction::kFailStartAndKill);
  CHECK(answers.failures == std::vector<std::string>{"killed while starting"});
}

// -- issue 14 (x14names): helpers keyed by (owner, scope, name) ---------------

namespace {

/// A registry holding one started record per key.
struct Scoped : StartedHelpers {
  ProcessKey resolve(const std::string& name, std::optional<std::string> scope, uid_t caller,
                     std::optional<uid_t> owner = std::nullopt) const {
    return registry.resolve(ProcessAddress{name, std::move(scope), owner}, caller);
  }
};


}  // namespace

TEST_CASE_METHOD(Scoped, "two projects and two users with one helper name are four helpers") {
  add(1000, "/p1", "db");
  add(1000, "/p2", "db");
  add(1001, "/p1", "db");
  add(1001, "", "db");
  CHECK(registry.all().size() == 4);
  CHECK(resolve("db", "/p1", 1000) == ProcessKey{1000, "/p1", "db"});
  CHECK(resolve("db", "/p2", 1000) == ProcessKey{1000, "/p2", "db"});
  CHECK(resolve("db", "/p1", 1001) == ProcessKey{1001, "/p1", "db"});
  // Only one owner in /p2: a root caller (or another user, whom the gate
  // then refuses) gets that one.
  CHECK(resolve("db", "/p2", 0) == ProcessKey{1000, "/p2", "db"});
  // Two owners in /p1 and the caller is neither: the owner must be said.
  CHECK(code_of([&] { resolve("db", "/p1", 0); }) == ErrorCode::kConflict);
  CHECK(resolve("db", "/p1", 0, 1001u) == ProcessKey{1001, "/p1", "db"});
  CHECK(code_of([&] { resolve("db", "/elsewhere", 1000); }) == ErrorCode::kNotFound);
}

TEST_CASE_METHOD(Scoped, "a name without scope means the global one, else the only one of that name") {
  add(1000, "/p1", "web");
  CHECK(resolve("web", std::nullopt, 1000) == ProcessKey{1000, "/p1", "web"});
  add(1000, "/p2", "web");
  // Two of the caller's own: ambiguous, and the message names both.
  try {
    resolve("web", std::nullopt, 1000);
    FAIL("resolved an ambiguous name");
  } catch (const lpd::protocol::Error& e) {
    CHECK(e.code() == ErrorCode::kConflict);
    CHECK(std::string(e.what()).find("/p1::web") != std::string::npos);
    CHECK(std::string(e.what()).find("/p2::web") != std::string::npos);
  }
  add(1000, "", "web");
  CHECK(resolve("web", std::nullopt, 1000) == ProcessKey{1000, "", "web"});
  // An explicit scope never falls back to another project's helper.
  try {
    resolve("web", "/p3", 1000);
    FAIL("fell back to another project");
  } catch (const lpd::protocol::Error& e) {
    CHECK(e.code() == ErrorCode::kNotFound);
    CHECK(std::string(e.what()).find("/p1::web") != std::string::npos);
  }
  // Another user's own names are never listed to the caller.
  try {
    resolve("web", "/p3", 2000);
    FAIL("found another's");
  } catch (const lpd::protocol::Error& e) {
    CHECK(std::string(e.what()).find("/p1") == std::string::npos);
  }
}

TEST_CASE("scopes are absolute, normalized, and full names split at the last ::") {
  CHECK(normalize_scope("") == "");
  CHECK(normalize_scope("/a/b/") == "/a/b");
  CHECK(normalize_scope("/") == "/");
  CHECK(normalize_scope("//") == "/");
  for (const char* bad : {"relative", "./x", "/a\nb"}) CHECK_THROWS_AS(normalize_scope(bad), lpd::protocol::Error);
  CHECK_THROWS_AS(normalize_scope("/" + std::string(5000, 'x')), lpd::protocol::Error);
  CHECK(split_full_name("/a/b::db") == std::pair<std::string, std::string>{"/a/b", "db"});
  CHECK(split_full_name("/we::ird::db") == std::pair<std::string, std::string>{"/we::ird", "db"});
  CHECK(split_full_name("db") == std::pair<std::string, std::string>{"", "db"});
  CHECK_THROWS_AS(split_full_name("::db"), lpd::protocol::Error);
  CHECK_THROWS_AS(split_full_name("/a::../x"), lpd::protocol::Error);
  CHECK((ProcessKey{5, "/a", "db"}.full_name()) == "/a::db");
  CHECK((ProcessKey{5, "", "db"}.full_name()) == "db");
}

TEST_CASE("file stems keep owners apart and survive builds") {
  CHECK(process_file_stem({1000, "", "db"}) == "db.u1000");
  CHECK(process_file_stem({1000, "/p", "db"}) == "db.u1000." + fmt::format("{:016x}", fnv1a64("/p")));
  CHECK(fnv1a64("") == 0xcbf29ce484222325ull);  // FNV-1a's offset basis
  CHECK(fnv1a64("a") == 0xaf63dc4c8601ec8cull);  // the published test vector
  CHECK(process_file_stem({1, "/p", "db"}) != process_file_stem({2, "/p", "db"}));
  CHECK(process_file_stem({1, "/p", "db"}) != process_file_stem({1, "/q", "db"}));
  // A name shaped like another owner's stem still ends in its own owner.
  CHECK(process_file_stem({1, "", "db.u2"}) == "db.u2.u1");
  CHECK(process_log_name("db.u1", 7) == "logs/db.u1.7.log");
}
