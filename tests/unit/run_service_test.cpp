// RunService and History::prune through their typed APIs, without a socket:
// joining runs, ending one's part, listing pages, pruning the caller's runs.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "daemon/core/event_bus.h"
#include "daemon/core/state_store.h"
#include "daemon/history/history.h"
#include "daemon/runs/run_service.h"
#include "daemon/runs/run_watcher.h"
#include "protocol/error.h"
#include "tests/unit/code_of.h"

using namespace lpd::daemon;
using lpd::protocol::ErrorCode;
using nlohmann::json;

namespace {

/// What RunService told its watcher (JobService in lpd), in order.
struct RecordingWatcher : RunWatcher {
  std::vector<std::string> seen;
  void worker_joined(const Run& run, const std::string& worker_id, const Peer& peer) override {
    seen.push_back("joined " + run.run_id + " " + worker_id + " " + std::to_string(peer.session_id));
  }
  void worker_ended_cleanly(const Peer& peer) override { seen.push_back("ended " + std::to_string(peer.session_id)); }
};

/// A run service (and the history over its registry) on a temporary state
/// directory; its io_context never runs.
struct RunFixture {
  std::string root;
  boost::asio::io_context io;
  EventBus events;
  std::unique_ptr<StateStore> store;
  RunRegistry registry;
  RecordingWatcher watcher;
  std::unique_ptr<RunService> runs;
  std::vector<std::string> published;

  RunFixture() {
    char dir[] = "/tmp/lpd-run-service-XXXXXX";
    root = ::mkdtemp(dir);
    store = std::make_unique<StateStore>(root);
    runs = std::make_unique<RunService>(io, events, *store, registry, watcher);
    events.subscribe([this](const Event& e) { published.push_back(e.type + " " + e.run_id); });
  }
  ~RunFixture() {
    runs.reset();
    std::filesystem::remove_all(root);
  }

  static Peer peer(uid_t uid, std::uint64_t session, pid_t pid = 4242) {
    Peer p;
    p.uid = uid;
    p.gid = uid;
    p.pid = pid;
    p.session_id = session;
    return p;
  }
  static JoinRequest joining(std::string run_id = "", std::string worker_id = "") {
    JoinRequest r;
    r.run_id = std::move(run_id);
    r.worker_id = std::move(worker_id);
    r.argv = {"pytest", "-x"};
    r.cwd = "/src";
    return r;
  }
  /// An ended run of `owner`, created and ended `age` seconds ago.
  void ended_run(const std::string& id, uid_t owner, double age) {
    Run run;
    run.run_id = id;
    run.owner = owner;
    run.active = false;
    run.created_at = ::time(nullptr) - age;
    run.ended_at = run.created_at;
    runs->registry().restore(run);
    std::filesystem::create_directories(root + "/runs/" + id);
  }
};


const RunView kWhole = [](const Run&, json record) { return record; };

}  // namespace

TEST_CASE_METHOD(RunFixture, "a controller starts a run, its workers join it, and each says who it is") {
  const RunJoined started = runs->join(joining(), peer(1000, 1, 100));
  CHECK(started.is_new);
  CHECK(started.worker_id == "controller");
  const Run* run = runs->registry().find(started.run_id);
  REQUIRE(run);
  CHECK(run->owner == 1000);
  CHECK(run->pid == 100);  // the peer's, not anything the request says
  CHECK(std::filesystem::exists(root + "/runs/" + started.run_id + "/run.json"));
  CHECK(published == std::vector<std::string>{"run.started " + started.run_id});

  const RunJoined worker = runs->join(joining(started.run_id, "gw0"), peer(1000, 2, 101));
  CHECK_FALSE(worker.is_new);
  CHECK(worker.run_id == started.run_id);
  CHECK(worker.worker_id == "gw0");
  CHECK(run->workers.at("gw0").session_id == 2);
  CHECK(published.size() == 1);  // joining is no new run
  CHECK(watcher.seen == std::vector<std::string>{"joined " + started.run_id + " controller 1",
                                                 "joined " + started.run_id + " gw0 2"});

  CHECK(code_of([&] { runs->join(joining(started.run_id, "../gw1"), peer(1000, 3)); }) == ErrorCode::kBadRequest);
  CHECK(code_of([&] { runs->join(joining(started.run_id, "gw1"), peer(1001, 3)); }) ==
        ErrorCode::kPermissionDenied);
}

TEST_CASE_METHOD(RunFixture, "ending one's part says whether the connection had one") {
  const RunJoined started = runs->join(joining(), peer(1000, 1));
  runs->join(joining(started.run_id, "gw0"), peer(1000, 2));
  CHECK(runs->end_part(peer(1000, 2)));
  CHECK(runs->registry().find(started.run_id)->workers.at("gw0").finished);
  CHECK(watcher.seen.back() == "ended 2");
  CHECK_FALSE(runs->end_part(peer(1001, 9)));  // in no run: nothing changes
  CHECK_FALSE(runs->end_part(peer(1000, 0)));  // no connection at all
}

TEST_CASE_METHOD(RunFixture, "runs are listed a page at a time, active ones unless all, as the view shows them") {
  ended_run("a-old", 1000, 300);
  const RunJoined first = runs->join(joining(), peer(1000, 1));
  const RunJoined second = runs->join(joining(), peer(1001, 2));
  const RunView ids = [](const Run& run, json record) {
    return json{{"run_id", run.run_id}, {"pid", record["pid"]}};
  };
  RunPage active = runs->list(false, 10, std::nullopt, ids);
  REQUIRE(active.runs.size() == 2);
  CHECK_FALSE(active.next);
  RunPage page = runs->list(true, 1, std::nullopt, ids);
  REQUIRE(page.runs.size() == 1);
  CHECK(page.runs[0]["run_id"] == "a-old");
  CHECK(page.runs[0]["pid"].is_null());  // no shim, no supervised command: no pid, never 0
  REQUIRE(page.next);
  RunPage rest = runs->list(true, 10, page.next, kWhole);
  REQUIRE(rest.runs.size() == 2);
  CHECK(rest.runs[0]["run_id"] == first.run_id);
  CHECK(rest.runs[1]["run_id"] == second.run_id);
}

TEST_CASE_METHOD(RunFixture, "prune removes only ended runs the caller may act on, and dry_run removes none") {
  History history(io, events, *store, runs->registry(), RetentionLimits{});
  ended_run("mine-1", 1000, 300);
  ended_run("mine-2", 1000, 200);
  ended_run("theirs", 1001, 100);
  const RunJoined active = runs->join(joining(), peer(1000, 1));
  const auto mine = [](const Run& run) { return run.owner == 1000; };

  History::PruneRequest request;
  request.keep_runs = 2;  // the active run and mine-2 are the newest two
  request.dry_run = true;
  History::Pruned listed = history.prune(request, mine);
  REQUIRE(listed.runs.size() == 1);
  CHECK(listed.runs[0]["run_id"] == "mine-1");
  CHECK(listed.limits.keep_runs == 2);
  CHECK_FALSE(listed.more);
  CHECK(runs->registry().find("mine-1"));
  CHECK(std::filesystem::exists(root + "/runs/mine-1"));

  request.keep_runs = 1;  // only the active run is kept (0 would mean no limit)
  request.dry_run = false;
  History::Pruned removed = history.prune(request, mine);
  REQUIRE(removed.runs.size() == 2);
  CHECK_FALSE(runs->registry().find("mine-1"));
  CHECK_FALSE(runs->registry().find("mine-2"));
  CHECK_FALSE(std::filesystem::exists(root + "/runs/mine-2"));
  CHECK(runs->registry().find("theirs"));         // another user's
  CHECK(runs->registry().find(active.run_id));    // never an active run
  CHECK(history.prune(request, mine).runs.empty());
}
