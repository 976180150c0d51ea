// PauseService's decisions through its typed API, without a socket: who may
// pause in a run, a re-sent pause, resuming, paging and waiting for pauses.
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
#include "daemon/pauses/pause_service.h"
#include "daemon/runs/run_registry.h"
#include "protocol/error.h"
#include "tests/unit/code_of.h"

using namespace lpd::daemon;
using lpd::protocol::ErrorCode;
using nlohmann::json;

namespace {

struct PauseSink : ReplySink {
  std::vector<json> lines;
  void send(std::string line) override { lines.push_back(json::parse(line)); }
  bool open() const override { return true; }
};

/// A pause service over a temporary state directory, one active run "r1"
/// of uid 1000 and one ended run "old"; its io_context never runs, so
/// nothing times out or turns stale behind a test's back.
struct PauseFixture {
  std::string root;
  boost::asio::io_context io;
  EventBus events;
  std::unique_ptr<StateStore> store;
  RunRegistry runs;
  AccessPolicy access;
  std::string socket_path = "/tmp/lpd-pause-service.sock";
  std::unique_ptr<PauseService> pauses;
  std::shared_ptr<PauseSink> sink = std::make_shared<PauseSink>();
  int next_id = 1;

  PauseFixture() {
    char dir[] = "/tmp/lpd-pause-service-XXXXXX";
    root = ::mkdtemp(dir);
    store = std::make_unique<StateStore>(root);
    Run run;
    run.run_id = "r1";
    run.owner = 1000;
    runs.restore(run);
    Run ended;
    ended.run_id = "old";
    ended.owner = 1000;
    ended.active = false;
    runs.restore(ended);
    access.admin_gid = 50;
    pauses = std::make_unique<PauseService>(io, events, *store, runs, access, socket_path);
  }
  ~PauseFixture() {
    pauses.reset();
    std::filesystem::remove_all(root);
  }

  /// This test process, as uid `uid` (the pause watches its pid: it lives).
  static Peer peer(uid_t uid, std::uint64_t session = 7) {
    Peer p;
    p.uid = uid;
    p.gid = uid;
    p.pid = ::getpid();
    p.session_id = session;
    return p;
  }
  /// A deferral whose reply lands in `sink`, with a fresh id.
  DeferReply defer() {
    return [this] { return Responder(json(next_id++), sink); };
  }
  static PauseView whole() {
    return [](const Pause& pause) { return pause.to_json(); };
  }
};


PauseRequest request_in(std::string run_id, std::string pause_id = "p1", std::string kind = "failure") {
  PauseRequest r;
  r.run_id = std::move(run_id);
  r.pause_id = std::move(pause_id);
  r.kind = std::move(kind);
  r.nodeid = "t.py::test_a";
  return r;
}

}  // namespace

TEST_CASE_METHOD(PauseFixture, "a pause request waits until it is resumed, then answers its outcome once") {
  bool deferred = false;
  const json now = pauses->request(request_in("r1"), peer(1000), [&] {
    deferred = true;
    return Responder(json(1), sink);
  });
  CHECK(now.is_null());
  CHECK(deferred);
  CHECK(sink->lines.empty());
  CHECK(pauses->registry().pending_count() == 1);
  CHECK(std::filesystem::exists(root + "/runs/r1/pauses/p1.json"));

  ResumeRequest resume;
  resume.failure_reason = "flaky network";
  const json resumed = pauses->resume("p", resume);  // a unique prefix names it
  CHECK(resumed["pause_id"] == "p1");
  CHECK(resumed["status"] == "resumed");
  REQUIRE(sink->lines.size() == 1);
  CHECK(sink->lines[0]["id"] == 1);
  CHECK(sink->lines[0]["result"]["status"] == "resumed");
  CHECK(sink->lines[0]["result"]["failure_reason"] == "flaky network");
  CHECK(pauses->registry().pending_count() == 0);
}

TEST_CASE_METHOD(PauseFixture, "a pause request is refused with the reason, before anything is paused") {
  CHECK(code_of([&] { pauses->request(request_in("nope"), peer(1000), defer()); }) == ErrorCode::kNotFound);
  CHECK(code_of([&] { pauses->request(request_in("r1", "../x"), peer(1000), defer()); }) == ErrorCode::kBadRequest);
  CHECK(code_of([&] { pauses->request(request_in("r1", "p2", "maybe"), peer(1000), defer()); }) ==
        ErrorCode::kBadRequest);
  CHECK(code_of([&] { pauses->request(request_in("old"), peer(1000), defer()); }) == ErrorCode::kConflict);
  CHECK(pauses->registry().list(true).empty());
  CHECK(sink->lines.empty());
}

TEST_CASE_METHOD(PauseFixture, "a re-sent pause re-attaches while pending and answers at once once it ended") {
  pauses->request(request_in("r1"), peer(1000, 1), defer());
  // The shim reconnected: its new connection waits instead of the old one.
  CHECK(pauses->request(request_in("r1"), peer(1000, 2), defer()).is_null());
  CHECK(pauses->registry().list(true).size() == 1);
  // Another user (not of the admin group) may not take it over; nor may
  // it be re-sent into another run.
  CHECK(code_of([&] { pauses->request(request_in("r1"), peer(1001), defer()); }) == ErrorCode::kPermissionDenied);
  Run other;
  other.run_id = "r2";
  other.owner = 1000;
  runs.restore(other);
  CHECK(code_of([&] { pauses->request(request_in("r2"), peer(1000), defer()); }) == ErrorCode::kConflict);

  ResumeRequest resume;
  resume.failure_reason = "ok";
  pauses->resume("p1", resume);
  REQUIRE(sink->lines.size() == 1);
  CHECK(sink->lines[0]["id"] == 2);  // the connection waiting now hears it
  bool deferred = false;
  const json again = pauses->request(request_in("r1"), peer(1000, 3), [&] {
    deferred = true;
    return Responder(json(9), sink);
  });
  CHECK_FALSE(deferred);
  CHECK(again["status"] == "resumed");
  CHECK(again["failure_reason"] == "ok");
}

TEST_CASE_METHOD(PauseFixture, "pauses are listed a page at a time, each as the caller may see it") {
  for (const char* id : {"a1", "a2", "a3"}) pauses->request(request_in("r1", id), peer(1000), defer());
  const PauseView redacted = [](const Pause& pause) { return json{{"pause_id", pause.pause_id}}; };
  PausePage first = pauses->list(false, "r1", 2, std::nullopt, redacted);
  REQUIRE(first.pauses.size() == 2);
  CHECK(first.pauses[0] == json{{"pause_id", "a1"}});
  REQUIRE(first.next);
  CHECK(first.next->pause_id == "a2");
  PausePage rest = pauses->list(false, "r1", 2, first.next, redacted);
  REQUIRE(rest.pauses.size() == 1);
  CHECK(rest.pauses[0]["pause_id"] == "a3");
  CHECK_FALSE(rest.next);
  CHECK(pauses->list(false, "r2", 10, std::nullopt, redacted).pauses.empty());
}

TEST_CASE_METHOD(PauseFixture, "a pause watch answers the pending pause, or the next one, or that none will come") {
  CHECK(code_of([&] { pauses->pending_pause_of("nope", whole()); }) == ErrorCode::kNotFound);
  CHECK(code_of([&] { pauses->pending_pause_of("old", whole()); }) == ErrorCode::kConflict);
  CHECK_FALSE(pauses->pending_pause_of("r1", whole()));

  auto watcher = std::make_shared<PauseSink>();
  pauses->wait_for_pause("r1", std::nullopt, 3, whole(), nullptr, Responder(json("w"), watcher));
  CHECK(watcher->lines.empty());
  pauses->request(request_in("r1", "next"), peer(1000), defer());
  REQUIRE(watcher->lines.size() == 1);
  CHECK(watcher->lines[0]["id"] == "w");
  CHECK(watcher->lines[0]["result"]["pause"]["pause_id"] == "next");
  const auto pending = pauses->pending_pause_of("r1", whole());
  REQUIRE(pending);
  CHECK((*pending)["pause_id"] == "next");

  // A watch of a run that ends without a pause is told so.
  Run quiet;
  quiet.run_id = "r3";
  quiet.owner = 1000;
  runs.restore(quiet);
  auto ended = std::make_shared<PauseSink>();
  pauses->wait_for_pause("r3", std::nullopt, 4, whole(), nullptr, Responder(json("e"), ended));
  events.publish("run.ended", {{"run_id", "r3"}}, "r3", 1000);
  REQUIRE(ended->lines.size() == 1);
  CHECK(ended->lines[0]["error"]["code"] == "conflict");
  CHECK(ended->lines[0]["error"]["message"] == "run r3 is no longer active");

  // A watcher whose connection left is forgotten, never answered.
  auto gone = std::make_shared<PauseSink>();
  pauses->wait_for_pause("r1", std::nullopt, 5, whole(), nullptr, Responder(json("g"), gone));
  pauses->peer_gone(peer(1000, 5));
  pauses->request(request_in("r1", "later"), peer(1000), defer());
  CHECK(gone->lines.empty());
}
