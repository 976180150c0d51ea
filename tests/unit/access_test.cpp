#include <catch2/catch.hpp>

#include "daemon/core/access.h"
#include "protocol/error.h"

using namespace lpd::daemon;
using nlohmann::json;

TEST_CASE("owners, root and admin-group members may act; others get permission_denied") {
  Peer owner;
  owner.uid = 1000;
  Peer other;
  other.uid = 1001;
  other.gid = 1001;
  other.groups = {1001, 50};
  Peer root;
  root.uid = 0;
  AccessPolicy none;
  AccessPolicy admins{50};
  CHECK(may_act_on(owner, 1000, none));
  CHECK(may_act_on(root, 1000, none));
  CHECK_FALSE(may_act_on(other, 1000, none));
  CHECK(may_act_on(other, 1000, admins));
  try {
    require_may_act(other, 1000, "pause abc", none);
    FAIL("must refuse");
  } catch (const lpd::protocol::Error& e) {
    CHECK(e.code() == lpd::protocol::ErrorCode::kPermissionDenied);
    CHECK(std::string(e.what()) == "pause abc belongs to uid 1000; uid 1001 may not act on it");
  }
}

TEST_CASE("reading content and acting are one predicate; the admin group counts as primary group too") {
  Peer admin_by_gid;
  admin_by_gid.uid = 1002;
  admin_by_gid.gid = 50;
  AccessPolicy admins{50};
  CHECK(may_access(admin_by_gid, 1000, admins));
  Peer other;
  other.uid = 1001;
  other.gid = 1001;
  CHECK_FALSE(may_access(other, 1000, admins));
  CHECK_FALSE(may_access(other, static_cast<uid_t>(-1), admins));  // nobody's record: root and admins only
  CHECK_THROWS_AS(require_may_read(other, 1000, "run r", admins), lpd::protocol::Error);
  CHECK_NOTHROW(require_may_read(admin_by_gid, 1000, "run r", admins));
}

namespace {

/// Every string anywhere in `j`, so a test can say a secret is nowhere.
bool contains_text(const json& j, const std::string& needle) { return j.dump().find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("each kind keeps exactly its metadata fields") {
  const std::string secret = "s3cr3t";
  SECTION("run") {
    json run = {{"run_id", "r"}, {"owner_uid", 1000}, {"status", "active"}, {"pid", 7}, {"hostname", "ci"},
                {"created_at", 1.5}, {"supervised", true}, {"workers", json::array({{{"worker_id", "gw0"}, {"pid", 8}}})},
                {"argv", {"pytest", secret}}, {"cwd", "/" + secret}, {"returncode", 139}, {"signal", 11},
                {"result", "crash in t.py::" + secret}};
    json m = metadata_only(RecordKind::kRun, run);
    CHECK_FALSE(contains_text(m, secret));
    CHECK(m["returncode"] == 139);  // as the job events show it to everyone
    CHECK(m["signal"] == 11);
    CHECK_FALSE(m.contains("result"));
    CHECK(m["workers"][0]["worker_id"] == "gw0");
    CHECK(m["status"] == "active");
    CHECK(m["redacted"] == true);
  }
  SECTION("job event: the payload's text is content") {
    json job = {{"type", "job"}, {"payload", {{"id", "r"}, {"state", "done"}, {"returncode", 1}, {"text", secret}}}};
    json m = metadata_only(RecordKind::kJob, job);
    CHECK(m == json{{"type", "job"}, {"payload", {{"id", "r"}, {"state", "done"}, {"returncode", 1}}}, {"redacted", true}});
  }
  SECTION("pause") {
    json pause = {{"pause_id", "p"}, {"run_id", "r"}, {"nodeid", "t.py::t"}, {"status", "resumed"}, {"kind", "checkpoint"},
                  {"owner_uid", 1000}, {"pid", 9}, {"task", secret}, {"original_failure", secret},
                  {"cwd", secret}, {"reason", secret}, {"failure_reason", secret}, {"result", true}};
    json m = metadata_only(RecordKind::kPause, pause);
    CHECK_FALSE(contains_text(m, secret));
    CHECK(m["nodeid"] == "t.py::t");
    CHECK(m["result"] == true);
  }
  SECTION("process") {
    json proc = {{"name", "db"}, {"owner", 1000}, {"pid", 9}, {"state", "ready"},
                 {"exit_status", nullptr}, {"log_path", "/var/lib/lpd/logs/db.log"},
                 {"argv", {"postgres", secret}}, {"cwd", secret}, {"pattern", secret}, {"ready_line", secret},
                 {"failure", secret}};
    json m = metadata_only(RecordKind::kProcess, proc);
    CHECK_FALSE(contains_text(m, secret));
    CHECK(m["state"] == "ready");
    CHECK(m.contains("exit_status"));
  }
  SECTION("crash") {
    json crash = {{"run_id", "r"}, {"nodeid", "t.py::t"}, {"signal", 11}, {"signal_name", "SIGSEGV"}, {"pid", 3},
                  {"owner_uid", 1000}, {"reason", secret}, {"traceback", secret}};
    json m = metadata_only(RecordKind::kCrash, crash);
    CHECK_FALSE(contains_text(m, secret));
    CHECK(m["signal_name"] == "SIGSEGV");
  }
  SECTION("test event") {
    json test = {{"nodeid", "t.py::t"}, {"outcome", "failed"}, {"phase", "call"}, {"message", secret}};
    json m = metadata_only(RecordKind::kTest, test);
    CHECK_FALSE(contains_text(m, secret));
    CHECK(m["outcome"] == "failed");
  }
  SECTION("an unknown kind, or a record that is no object, shows nothing") {
    CHECK(metadata_only(RecordKind::kOther, {{"anything", secret}}) == json{{"redacted", true}});
    CHECK(metadata_only(RecordKind::kRun, json(secret)) == json{{"redacted", true}});
  }
}

TEST_CASE("visible_to gives the whole record to those who may access it, metadata to the rest") {
  Peer owner;
  owner.uid = 1000;
  Peer other;
  other.uid = 1001;
  const json record = {{"run_id", "r"}, {"argv", {"x"}}};
  CHECK(visible_to(owner, {}, 1000, RecordKind::kRun, record) == record);
  CHECK(visible_to(other, {}, 1000, RecordKind::kRun, record) == json{{"run_id", "r"}, {"redacted", true}});
}

TEST_CASE("event types map to the kind of record they carry") {
  CHECK(record_kind_of_event("run.started") == RecordKind::kRun);
  CHECK(record_kind_of_event("run.ended") == RecordKind::kRun);
  CHECK(record_kind_of_event("job") == RecordKind::kJob);
  CHECK(record_kind_of_event("pause.created") == RecordKind::kPause);
  CHECK(record_kind_of_event("process.ready") == RecordKind::kProcess);
  CHECK(record_kind_of_event("crash") == RecordKind::kCrash);
  CHECK(record_kind_of_event("test.finish") == RecordKind::kTest);
  CHECK(record_kind_of_event("jobs") == RecordKind::kOther);
  CHECK(record_kind_of_event("something.new") == RecordKind::kOther);
}
