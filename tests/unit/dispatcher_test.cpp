#include <catch2/catch.hpp>

#include <map>
#include <stdexcept>

#include "daemon/transport/dispatcher.h"

using namespace lpd::daemon;
using lpd::protocol::ErrorCode;

namespace {

/// Collects what the dispatcher writes, as a session would send it.
struct DispatchSink : ReplySink {
  std::vector<json> lines;
  bool is_open = true;
  void send(std::string line) override { lines.push_back(json::parse(line)); }
  bool open() const override { return is_open; }
};

struct DispatcherFixture {
  std::shared_ptr<DispatchSink> sink = std::make_shared<DispatchSink>();
  Peer peer;
  std::optional<Responder> parked;
  Dispatcher dispatcher{{
      {"hello", "", Gate::kOpen, [](Call& c) { c.peer.said_hello = true; return json{{"hi", true}}; }, nullptr,
       true},
      {"echo", "", Gate::kOpen, [](Call& c) { return json{{"text", c.fields.string("text")}}; }},
      {"later", "", Gate::kOpen, [this](Call& c) { parked = c.defer(); return json(); }},
      {"boom", "", Gate::kOpen, [](Call&) -> json { throw std::runtime_error("kaput"); }},
      {"note", "", Gate::kOwn, [](Call& c) { c.peer.role = c.fields.string("role"); return json(); }},
  }};

  void send(const std::string& line) { dispatcher.dispatch_line(line, peer, sink); }
  std::string last_code() { return sink->lines.back()["error"]["code"]; }
};

}  // namespace

TEST_CASE_METHOD(DispatcherFixture, "hello must come first") {
  send(R"({"id":1,"op":"echo","text":"x"})");
  CHECK(last_code() == "bad_request");
  CHECK(sink->lines.back()["id"] == 1);
  CHECK(sink->lines.back()["error"]["message"] == "the first message on a connection must be \"hello\"");
  send(R"({"id":2,"op":"hello"})");
  CHECK(sink->lines.back()["ok"] == true);
  send(R"({"id":3,"op":"echo","text":"x"})");
  CHECK(sink->lines.back()["result"]["text"] == "x");
}

TEST_CASE_METHOD(DispatcherFixture, "each bad input gets its own error code") {
  peer.said_hello = true;
  send("garbage");
  CHECK(last_code() == "bad_request");
  CHECK(sink->lines.back()["id"].is_null());
  send(R"({"id":1,"op":"nope"})");
  CHECK(last_code() == "unknown_op");
  CHECK(sink->lines.back()["error"]["message"] == "unknown operation \"nope\"");
  send(R"({"id":2,"op":"echo"})");
  CHECK(last_code() == "bad_request");
  send(R"({"id":3,"op":"echo","text":7})");
  CHECK(last_code() == "bad_request");
  send(R"({"id":4,"op":"boom"})");
  CHECK(last_code() == "internal");
  send(R"({"id":5,"ok":true,"result":{}})");
  CHECK(last_code() == "bad_request");
  CHECK(sink->lines.size() == 6);
}

TEST_CASE_METHOD(DispatcherFixture, "notifications run without a reply, but their errors are reported") {
  peer.said_hello = true;
  send(R"({"op":"note","role":"shim"})");
  CHECK(peer.role == "shim");
  CHECK(sink->lines.empty());
  send(R"({"op":"note"})");
  REQUIRE(sink->lines.size() == 1);
  CHECK(sink->lines.back()["id"].is_null());
  CHECK(last_code() == "bad_request");
}

TEST_CASE_METHOD(DispatcherFixture, "a deferred request is answered once, later") {
  peer.said_hello = true;
  send(R"({"id":"a","op":"later"})");
  CHECK(sink->lines.empty());
  REQUIRE(parked.has_value());
  CHECK(parked->connected());
  parked->ok({{"done", true}});
  parked->ok({{"done", "twice"}});
  REQUIRE(sink->lines.size() == 1);
  CHECK(sink->lines.back()["id"] == "a");
  CHECK(sink->lines.back()["result"]["done"] == true);
}

TEST_CASE_METHOD(DispatcherFixture, "a deferred responder outlives its peer harmlessly") {
  peer.said_hello = true;
  send(R"({"id":9,"op":"later"})");
  sink->is_open = false;
  CHECK_FALSE(parked->connected());
  sink.reset();
  parked->fail(ErrorCode::kTimeout, "gone");  // nobody to tell; must not crash
  CHECK(parked->answered());
}

// -- gates ------------------------------------------------------------------

namespace {

constexpr uid_t kOwner = 1000;
constexpr gid_t kAdmins = 50;

/// A table with one operation per gate kind over one object owned by
/// kOwner, counting how often each handler actually ran.
struct GateFixture {
  std::shared_ptr<DispatchSink> sink = std::make_shared<DispatchSink>();
  std::map<std::string, int> ran;
  OwnerOf thing = [](const Call& c) -> std::optional<Owned> {
    const std::string name = c.fields.string("name");
    if (name == "new") return std::nullopt;  // does not exist yet: the call creates it
    if (name != "x") throw lpd::protocol::Error(ErrorCode::kNotFound, "no thing \"" + name + "\"");
    return Owned{"thing x", kOwner};
  };
  Handler counting(const std::string& op) {
    return [this, op](Call&) { ++ran[op]; return json{{"secret", "s3cr3t"}}; };
  }
  Dispatcher dispatcher{std::vector<Operation>{
                            {"peek", "", Gate::kRead, counting("peek"), thing},
                            {"poke", "", Gate::kAct, counting("poke"), thing},
                            {"list", "", Gate::kList,
                             [](Call& c) {
                               return json{{"items", json::array({c.view(RecordKind::kRun, kOwner,
                                                                         {{"run_id", "r1"}, {"argv", {"s3cr3t"}}})})}};
                             }},
                        },
                        AccessPolicy{kAdmins}};

  json call(const Peer& who, const std::string& line) {
    Peer peer = who;
    peer.said_hello = true;
    dispatcher.dispatch_line(line, peer, sink);
    return sink->lines.back();
  }
};

Peer peer_with_uid(uid_t uid, std::vector<gid_t> groups = {}) {
  Peer p;
  p.uid = uid;
  p.gid = uid;
  p.groups = std::move(groups);
  return p;
}

}  // namespace

TEST_CASE_METHOD(GateFixture, "content of one object goes to its owner, root and the admin group only") {
  const Peer other = peer_with_uid(1001, {1001});
  auto reply = call(other, R"({"id":1,"op":"peek","name":"x"})");
  CHECK(reply["error"]["code"] == "permission_denied");
  CHECK(reply["error"]["message"] == "thing x belongs to uid 1000; uid 1001 may not read its content");
  reply = call(other, R"({"id":2,"op":"poke","name":"x"})");
  CHECK(reply["error"]["code"] == "permission_denied");
  CHECK(reply["error"]["message"] == "thing x belongs to uid 1000; uid 1001 may not act on it");
  CHECK(ran.empty());  // refused before either handler ran

  for (const Peer& allowed : {peer_with_uid(kOwner), peer_with_uid(0), peer_with_uid(1002, {1002, kAdmins})}) {
    CHECK(call(allowed, R"({"id":3,"op":"peek","name":"x"})")["result"]["secret"] == "s3cr3t");
    CHECK(call(allowed, R"({"id":4,"op":"poke","name":"x"})")["ok"] == true);
  }
  CHECK(ran["peek"] == 3);
  CHECK(ran["poke"] == 3);
}

TEST_CASE_METHOD(GateFixture, "the resolver's own errors come before the handler, and a new object has no owner") {
  const Peer other = peer_with_uid(1001);
  CHECK(call(other, R"({"id":1,"op":"peek","name":"nope"})")["error"]["code"] == "not_found");
  CHECK(call(other, R"({"id":2,"op":"peek"})")["error"]["code"] == "bad_request");
  CHECK(ran.empty());
  CHECK(call(other, R"({"id":3,"op":"poke","name":"new"})")["ok"] == true);
  CHECK(ran["poke"] == 1);
}

TEST_CASE_METHOD(GateFixture, "a list gate lets anyone call, and reduces what they may not read") {
  auto items = call(peer_with_uid(1001), R"({"id":1,"op":"list"})")["result"]["items"];
  CHECK(items[0] == json{{"run_id", "r1"}, {"redacted", true}});
  items = call(peer_with_uid(kOwner), R"({"id":2,"op":"list"})")["result"]["items"];
  CHECK(items[0]["argv"][0] == "s3cr3t");
  items = call(peer_with_uid(1002, {kAdmins}), R"({"id":3,"op":"list"})")["result"]["items"];
  CHECK(items[0]["argv"][0] == "s3cr3t");
}

TEST_CASE("a table row whose gate cannot be checked is refused at startup") {
  Handler h = [](Call&) { return json(); };
  OwnerOf o = [](const Call&) -> std::optional<Owned> { return std::nullopt; };
  CHECK_THROWS_AS(Dispatcher(std::vector<Operation>{{"peek", "", Gate::kRead, h}}), std::logic_error);
  CHECK_THROWS_AS(Dispatcher(std::vector<Operation>{{"poke", "", Gate::kAct, h}}), std::logic_error);
  CHECK_THROWS_AS(Dispatcher(std::vector<Operation>{{"list", "", Gate::kList, h, o}}), std::logic_error);
  CHECK_THROWS_AS(Dispatcher(std::vector<Operation>{{"a", "", Gate::kOpen, nullptr}}), std::logic_error);
  CHECK_THROWS_AS(Dispatcher(std::vector<Operation>{{"a", "", Gate::kOpen, h}, {"a", "", Gate::kOpen, h}}),
                  std::logic_error);
  CHECK_NOTHROW(Dispatcher(std::vector<Operation>{{"peek", "", Gate::kRead, h, o}}));
}

// h13rec (issue 13): a test.start or passed test.finish in the shim's own
// text skips decoding, but not the dispatcher's gates.
TEST_CASE("the shim's per-test records pass the same gates, and reach only ops that take them") {
  auto sink = std::make_shared<DispatchSink>();
  Peer peer;
  std::vector<std::string> seen;
  const auto record_or_fields = [&seen](Call& c) {
    seen.push_back(c.test_record ? "record " + std::string(c.test_record->nodeid)
                                 : "fields " + c.fields.string("nodeid"));
    return json();
  };
  Dispatcher dispatcher{{
      {"hello", "", Gate::kOpen, [](Call& c) { c.peer.said_hello = true; return json(); }, nullptr, true},
      {"test.start", "", Gate::kOwn, record_or_fields, nullptr, false, true, /*test_records=*/true},
      {"test.finish", "", Gate::kOwn, record_or_fields, nullptr, false, true, /*test_records=*/false},
  }};
  const std::string start = R"({"op":"test.start","nodeid":"t.py::a"})";
  const std::string passed =
      R"({"op":"test.finish","nodeid":"t.py::a","outcome":"passed","phase":"call","duration":0.5,"message":""})";
  dispatcher.dispatch_line(start, peer, sink);  // before hello: refused as any message
  REQUIRE(sink->lines.size() == 1);
  CHECK(sink->lines[0]["error"]["message"] == "the first message on a connection must be \"hello\"");
  CHECK(seen.empty());
  peer.said_hello = true;
  dispatcher.dispatch_line(start, peer, sink);
  dispatcher.dispatch_line(passed, peer, sink);  // its op does not take records: decoded as usual
  dispatcher.dispatch_line(R"({"op":"test.start","nodeid":"t.py::b","phase":"call"})", peer, sink);
  CHECK(seen == std::vector<std::string>{"record t.py::a", "fields t.py::a", "fields t.py::b"});
  CHECK(sink->lines.size() == 1);  // notifications: no reply
  Handler h = [](Call&) { return json(); };
  CHECK_THROWS_AS(Dispatcher(std::vector<Operation>{{"echo", "", Gate::kOpen, h, nullptr, false, false, true}}),
                  std::logic_error);
}
