#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "daemon/daemon.h"
#include "daemon/operation_table.h"

using namespace lpd::daemon;
using nlohmann::json;

namespace {

/// A daemon that is built (its table, its services) but never runs: no
/// socket, no state restored.
struct DaemonFixture {
  std::string root;
  std::unique_ptr<Daemon> daemon;
  std::unique_ptr<Dispatcher> dispatcher;  // the daemon's own table, for calls from tests

  DaemonFixture() {
    char dir[] = "/tmp/lpd-optable-XXXXXX";
    root = ::mkdtemp(dir);
    DaemonConfig config;
    config.socket_path = root + "/lpd.sock";
    config.state_dir = root + "/state";
    config.access.admin_gid = 50;
    daemon = std::make_unique<Daemon>(config);
    dispatcher = std::make_unique<Dispatcher>(operation_table(*daemon));
  }
  ~DaemonFixture() {
    dispatcher.reset();
    daemon.reset();
    std::filesystem::remove_all(root);
  }
};

struct TableSink : ReplySink {
  std::vector<json> lines;
  void send(std::string line) override { lines.push_back(json::parse(line)); }
  bool open() const override { return true; }
};

json call_as(Dispatcher& d, uid_t uid, const json& request) {
  auto sink = std::make_shared<TableSink>();
  Peer peer;
  peer.uid = uid;
  peer.gid = uid;
  peer.said_hello = true;
  d.dispatch_line(request.dump(), peer, sink);
  REQUIRE(sink->lines.size() == 1);
  return sink->lines.front();
}

}  // namespace

TEST_CASE_METHOD(DaemonFixture, "every operation of the daemon has the gate protocol/README.md documents") {
  // The README's "Who sees what" table, row for row: a new operation fails
  // here until someone decides (and documents) who may call it.
  const std::map<std::string, Gate> documented = {
      {"hello", Gate::kOpen},           {"ping", Gate::kOpen},           {"status", Gate::kOpen},
      {"ops", Gate::kOpen},             {"ring.attach", Gate::kOwn},     {"events.subscribe", Gate::kList},
      {"events.list", Gate::kList},     {"run.register", Gate::kAct},    {"run.end", Gate::kOwn},
      {"run.list", Gate::kList},        {"pause.request", Gate::kAct},   {"pause.resume", Gate::kAct},
      {"pause.list", Gate::kList},      {"pause.watch", Gate::kList},    {"run.start", Gate::kOwn},
      {"run.attach", Gate::kRead},      {"run.stop", Gate::kAct},        {"run.info", Gate::kRead},
      {"run.report", Gate::kRead},      {"crash.list", Gate::kList},     {"test.start", Gate::kOwn},
      {"test.finish", Gate::kOwn},      {"crash.notice", Gate::kOwn},    {"worker.down", Gate::kOwn},
      {"worker.results", Gate::kOwn},   {"worker.crashed", Gate::kOwn},
      {"collection.finish", Gate::kOwn}, {"traceback.attach", Gate::kOwn}, {"proc.ensure", Gate::kAct},
      {"proc.list", Gate::kList},       {"proc.info", Gate::kRead},      {"proc.kill", Gate::kAct},
      {"proc.kill_all", Gate::kOwn},    {"proc.logs", Gate::kRead},
      // issue 12 (job helper): one-way notifications about the caller's own process
      {"test.phase", Gate::kOwn},       {"session.error", Gate::kOwn},   {"collection.items", Gate::kOwn},
      // issue 13 (history): removes only runs the caller may act on, checked per run
      {"prune", Gate::kOwn},
      // issue 14 (x14names): a connection lets go of its lease on the helper it names
      {"proc.release", Gate::kAct},
      // issue 15 (h15lp): pytest-live-pause's pause directory for a run the caller may act on
      {"pause.mirror", Gate::kAct},
      // issue 16 (h16tok): the caller's own HTTP token, for the uid of its connection
      {"http.token", Gate::kOwn},
  };
  const auto& ops = daemon->dispatcher().operations();
  CHECK(ops.size() == documented.size());
  for (const auto& op : ops) {
    INFO("operation " << op.name);
    auto it = documented.find(std::string(op.name));
    REQUIRE(it != documented.end());
    CHECK(to_string(op.gate) == to_string(it->second));
    const bool one_object = op.gate == Gate::kRead || op.gate == Gate::kAct;
    CHECK(static_cast<bool>(op.owner_of) == one_object);
  }
  CHECK(daemon->dispatcher().access().admin_gid == 50u);
}

TEST_CASE_METHOD(DaemonFixture, "one-object gates find the object first: unknown objects are not_found for anyone") {
  for (const char* op : {"run.attach", "run.info", "run.report", "run.stop"}) {
    INFO(op);
    CHECK(call_as(*dispatcher, 1001, {{"id", 1}, {"op", op}, {"run_id", "nope"}})["error"]["code"] == "not_found");
  }
  for (const char* op : {"proc.info", "proc.logs", "proc.kill"}) {
    INFO(op);
    CHECK(call_as(*dispatcher, 1001, {{"id", 1}, {"op", op}, {"name", "nope"}})["error"]["code"] == "not_found");
    CHECK(call_as(*dispatcher, 1001, {{"id", 1}, {"op", op}, {"name", "../x"}})["error"]["code"] == "bad_request");
  }
  CHECK(call_as(*dispatcher, 1001, {{"id", 1}, {"op", "pause.resume"}, {"pause_id", "nope"}})["error"]["code"] ==
        "not_found");
}

TEST_CASE_METHOD(DaemonFixture, "another user's run: listed as metadata, never joined") {
  Run run;
  run.run_id = "r1";
  run.owner = 1000;
  run.argv = {"pytest", "--token=s3cr3t"};
  run.cwd = "/home/a/secret-project";
  daemon->runs().registry().restore(run);

  const json others = call_as(*dispatcher, 1001, {{"id", 1}, {"op", "run.list"}})["result"]["runs"];
  REQUIRE(others.size() == 1);
  CHECK(others[0]["run_id"] == "r1");
  CHECK(others[0]["owner_uid"] == 1000);
  CHECK(others[0]["redacted"] == true);
  CHECK(others[0].dump().find("s3cr3t") == std::string::npos);
  CHECK(others[0].dump().find("secret-project") == std::string::npos);
  CHECK(call_as(*dispatcher, 1000, {{"id", 2}, {"op", "run.list"}})["result"]["runs"][0]["argv"][1] == "--token=s3cr3t");
  CHECK(call_as(*dispatcher, 0, {{"id", 3}, {"op", "run.list"}})["result"]["runs"][0]["cwd"] == run.cwd);

  const json join = call_as(*dispatcher, 1001, {{"id", 4}, {"op", "run.register"}, {"run_id", "r1"}});
  CHECK(join["error"]["code"] == "permission_denied");
  CHECK(join["error"]["message"] == "run r1 belongs to uid 1000; uid 1001 may not act on it");
}

TEST_CASE_METHOD(DaemonFixture, "events carry their owner's content to those who may read it, metadata to the rest") {
  Run run;  // the run the event is of (an unknown run's events are a removed run's: never listed)
  run.run_id = "r1";
  run.owner = 1000;
  daemon->runs().registry().restore(run);
  daemon->events().publish("test.finish",
                           {{"nodeid", "t.py::t"}, {"outcome", "failed"}, {"message", "assert s3cr3t"}}, "r1", 1000);
  const json others = call_as(*dispatcher, 1001, {{"id", 1}, {"op", "events.list"}})["result"]["events"];
  REQUIRE(others.size() == 1);
  CHECK(others[0]["data"]["nodeid"] == "t.py::t");
  CHECK(others[0]["data"]["outcome"] == "failed");
  CHECK(others[0]["data"]["run_id"] == "r1");
  CHECK(others[0]["data"]["seq"] == 1);
  CHECK_FALSE(others[0]["data"].contains("message"));
  const json mine = call_as(*dispatcher, 1000, {{"id", 2}, {"op", "events.list"}})["result"]["events"];
  CHECK(mine[0]["data"]["message"] == "assert s3cr3t");
}
