#include <catch2/catch.hpp>

#include "daemon/pauses/pause_registry.h"
#include "protocol/error.h"
#include "tests/unit/code_of.h"

using namespace lpd::daemon;
using lpd::protocol::Error;
using lpd::protocol::ErrorCode;

namespace {

Pause make_pause(std::string id, PauseKind kind, double created_at = 100) {
  Pause p;
  p.pause_id = std::move(id);
  p.run_id = "run-1";
  p.kind = kind;
  p.nodeid = "t.py::test";
  p.timeout = 30;
  p.created_at = created_at;
  return p;
}


ResumeRequest with_result(std::optional<bool> result, std::optional<std::string> reason = std::nullopt) {
  ResumeRequest r;
  r.has_result = true;
  r.result = result;
  r.reason = std::move(reason);
  return r;
}

}  // namespace

TEST_CASE("a failure pause takes failure_reason only") {
  PauseRegistry registry;
  registry.add(make_pause("aaaa1111", PauseKind::kFailure), nullptr);
  CHECK(code_of([&] { registry.resume("aaaa1111", with_result(true), 101); }) == ErrorCode::kBadRequest);
  ResumeRequest reason_only;
  reason_only.reason = "x";
  CHECK(code_of([&] { registry.resume("aaaa1111", reason_only, 101); }) == ErrorCode::kBadRequest);
  ResumeRequest ok;
  ok.failure_reason = "flaky";
  Pause& p = registry.resume("aaaa1111", ok, 101);
  CHECK(p.status == PauseStatus::kResumed);
  CHECK(p.decision.failure_reason == "flaky");
  CHECK(p.outcome_json()["failure_reason"] == "flaky");
  CHECK(p.resolved_at == 101);
}

TEST_CASE("a checkpoint takes a result (true, false or none) and a reason, never failure_reason") {
  PauseRegistry registry;
  registry.add(make_pause("c1", PauseKind::kCheckpoint), nullptr);
  registry.add(make_pause("c2", PauseKind::kCheckpoint), nullptr);
  registry.add(make_pause("c3", PauseKind::kCheckpoint), nullptr);
  ResumeRequest failure;
  failure.has_result = true;
  failure.failure_reason = "no";
  CHECK(code_of([&] { registry.resume("c1", failure, 1); }) == ErrorCode::kBadRequest);
  CHECK(code_of([&] { registry.resume("c1", ResumeRequest{}, 1); }) == ErrorCode::kBadRequest);
  CHECK(registry.resume("c1", with_result(true, "ok"), 1).outcome_json()["result"] == true);
  CHECK(registry.resume("c2", with_result(false), 1).outcome_json()["result"] == false);
  auto none = registry.resume("c3", with_result(std::nullopt), 1).outcome_json();
  CHECK(none["result"].is_null());
  CHECK(none["reason"] == "");
}

TEST_CASE("only a pending pause can be resumed, and each refusal says why") {
  PauseRegistry registry;
  registry.add(make_pause("resumed", PauseKind::kCheckpoint), nullptr);
  registry.add(make_pause("stale", PauseKind::kCheckpoint), nullptr);
  registry.add(make_pause("late", PauseKind::kCheckpoint), nullptr);
  registry.resume("resumed", with_result(true), 1);
  CHECK(registry.mark_stale("stale", 2));
  CHECK(registry.time_out("late", 3));
  CHECK_FALSE(registry.time_out("late", 4));  // once only
  CHECK_FALSE(registry.mark_stale("resumed", 4));
  for (const char* id : {"resumed", "stale", "late"})
    CHECK(code_of([&] { registry.resume(id, with_result(true), 5); }) == ErrorCode::kConflict);
  CHECK(code_of([&] { registry.resume("missing", with_result(true), 5); }) == ErrorCode::kNotFound);
  try {
    registry.resume("stale", with_result(true), 5);
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("went away") != std::string::npos);
  }
}

TEST_CASE("a unique prefix finds a pause; an ambiguous one is refused") {
  PauseRegistry registry;
  registry.add(make_pause("abc123", PauseKind::kFailure), nullptr);
  registry.add(make_pause("abd456", PauseKind::kFailure), nullptr);
  CHECK(registry.lookup("abc").pause_id == "abc123");
  CHECK(registry.lookup("abd4").pause_id == "abd456");
  CHECK(code_of([&] { registry.lookup("ab"); }) == ErrorCode::kBadRequest);
  CHECK(code_of([&] { registry.lookup("x"); }) == ErrorCode::kNotFound);
  CHECK(code_of([&] { registry.lookup(""); }) == ErrorCode::kBadRequest);
}

TEST_CASE("re-adding a pause id finds the existing pause (a shim reconnecting)") {
  PauseRegistry registry;
  bool existed = true;
  registry.add(make_pause("p1", PauseKind::kFailure, 100), &existed);
  CHECK_FALSE(existed);
  Pause& again = registry.add(make_pause("p1", PauseKind::kFailure, 200), &existed);
  CHECK(existed);
  CHECK(again.created_at == 100);
}

TEST_CASE("listing shows pending pauses oldest first, all with include_resolved") {
  PauseRegistry registry;
  registry.add(make_pause("new", PauseKind::kFailure, 300), nullptr);
  registry.add(make_pause("old", PauseKind::kFailure, 100), nullptr);
  Pause other = make_pause("other-run", PauseKind::kFailure, 200);
  other.run_id = "run-2";
  registry.add(other, nullptr);
  registry.mark_stale("new", 400);
  auto pending = registry.list(false);
  REQUIRE(pending.size() == 2);
  CHECK(pending[0]->pause_id == "old");
  CHECK(registry.list(true).size() == 3);
  CHECK(registry.list(true, "run-2").size() == 1);
  CHECK(registry.pending_count() == 2);
}

TEST_CASE("a pause keeps pytest-live-pause's field names through JSON") {
  Pause p = make_pause("p1", PauseKind::kCheckpoint);
  p.task = "approve";
  p.worker_id = "gw1";
  p.pid = 42;
  p.status = PauseStatus::kResumed;
  p.decision.result = false;
  p.decision.reason = "no";
  auto j = p.to_json();
  for (const char* field : {"pause_id", "run_id", "nodeid", "timeout", "original_failure", "status", "created_at",
                            "pid", "hostname", "cwd", "worker_id", "kind", "task"})
    CHECK(j.contains(field));
  Pause back = Pause::from_json(j);
  CHECK(back.pause_id == "p1");
  CHECK(back.kind == PauseKind::kCheckpoint);
  CHECK(back.status == PauseStatus::kResumed);
  CHECK(back.decision.result == false);
  CHECK(back.decision.reason == "no");
  CHECK(back.worker_id == "gw1");
  CHECK(back.deadline() == 130);
}

TEST_CASE("retention forgets the resolved pauses of the runs it removed, never a pending one nor another run's") {
  PauseRegistry registry;
  registry.add(make_pause("aaaa0001", PauseKind::kFailure), nullptr);
  Pause pending = make_pause("aaaa0002", PauseKind::kFailure);
  registry.add(std::move(pending), nullptr);
  Pause other = make_pause("aaaa0003", PauseKind::kFailure);
  other.run_id = "run-2";
  registry.add(std::move(other), nullptr);
  registry.mark_stale("aaaa0001", 101);
  registry.mark_stale("aaaa0003", 101);
  CHECK(registry.forget_runs({"run-1"}) == 1);
  std::vector<std::string> left;
  for (const Pause* p : registry.list(/*include_resolved=*/true)) left.push_back(p->pause_id);
  CHECK(left == std::vector<std::string>{"aaaa0002", "aaaa0003"});
}
