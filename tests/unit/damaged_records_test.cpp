// Records of the state directory that a bug, a full disk or a hand edit
// damaged: reading them back must neither throw (restore would stop lpd
// from starting) nor convert out of range (undefined behaviour). Found by
// the fuzz targets in fuzz/ (issue 13, piece "fuzz").

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "daemon/pauses/pause.h"
#include "daemon/processes/process_record_json.h"

using lpd::daemon::Pause;
using lpd::daemon::PauseKind;
using lpd::daemon::PauseStatus;
using lpd::daemon::process_from_json;
using nlohmann::json;

namespace {

json good_pause() {
  return {{"pause_id", "40e16655195f4fc8"}, {"run_id", "r1"},   {"kind", "checkpoint"}, {"status", "resumed"},
          {"nodeid", "t.py::t"},           {"pid", 4242},      {"pid_start_time", 99}, {"owner_uid", 1000},
          {"timeout", 120.0},              {"created_at", 5.5}, {"resolved_at", 7.25}, {"result", true},
          {"reason", "looks right"}};
}

json good_process() {
  return {{"name", "db"},     {"state", "ready"},       {"pid", 4242},           {"owner", 1000},
          {"start_time", 77}, {"started_at", 1.5},      {"argv", {"sleep", "9"}}, {"max_read_lines", 10},
          {"ready_offset", 3}, {"exit_status", nullptr}};
}

}  // namespace

TEST_CASE("a stored pause reads back as it was written") {
  const Pause pause = Pause::from_json(good_pause());
  CHECK(pause.kind == PauseKind::kCheckpoint);
  CHECK(pause.status == PauseStatus::kResumed);
  CHECK(pause.pid == 4242);
  CHECK(pause.owner == 1000u);
  CHECK(pause.decision.result == std::optional<bool>(true));
  CHECK(Pause::from_json(pause.to_json()).to_json() == pause.to_json());
}

TEST_CASE("a pause field out of range or of another type reads as its default") {
  json j = good_pause();
  j["pid"] = 1e300;             // was undefined behaviour: double to int
  j["pid_start_time"] = -1;     // negative into an unsigned field
  j["owner_uid"] = 4294967296;  // wider than uid_t
  j["kind"] = 5;                // was json::type_error, which stopped restore
  j["status"] = json::array();
  j["timeout"] = "soon";
  j["reason"] = nullptr;
  Pause pause;
  REQUIRE_NOTHROW(pause = Pause::from_json(j));
  CHECK(pause.pid == 0);
  CHECK(pause.pid_start_time == 0u);
  CHECK(pause.owner == static_cast<uid_t>(-1));
  CHECK(pause.kind == PauseKind::kFailure);
  CHECK(pause.status == PauseStatus::kStale);
  CHECK(pause.timeout == 0.0);
  CHECK(pause.decision.reason.empty());
  CHECK(pause.pause_id == "40e16655195f4fc8");  // the good fields survive
}

TEST_CASE("a pause record that is not an object reads as all defaults") {
  for (const json& j : {json(42), json::array({1, 2}), json("text"), json(nullptr)}) {
    Pause pause;
    REQUIRE_NOTHROW(pause = Pause::from_json(j));
    CHECK(pause.pause_id.empty());  // restore skips it: not a safe id
  }
}

TEST_CASE("a process record with an out-of-range required integer is rejected") {
  REQUIRE(process_from_json(good_process()));
  for (const char* key : {"pid", "owner", "start_time"}) {
    json j = good_process();
    j[key] = 1e300;
    CHECK_FALSE(process_from_json(j));
    j[key] = -1e300;
    CHECK_FALSE(process_from_json(j));
  }
  json j = good_process();
  j["pid"] = 4294967296;  // would wrap to another process's pid
  CHECK_FALSE(process_from_json(j));
}

TEST_CASE("an optional process integer out of range reads as its default") {
  json j = good_process();
  j["state"] = "exited";
  j["max_read_lines"] = 1e300;
  j["ready_offset"] = -5;
  j["exit_status"] = {{"known", true}, {"code", 1e300}, {"signal", 9}};
  const auto record = process_from_json(j);
  REQUIRE(record);
  CHECK(record->max_read_lines == 0);
  CHECK(record->ready_offset == 0u);
  CHECK_FALSE(record->exit.exit_code);  // ExitStatus's default: unknown
  CHECK(record->exit.signal == 9);
}
