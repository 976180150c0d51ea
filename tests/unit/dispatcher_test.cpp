#include <catch2/catch.hpp>

#include "daemon/dispatcher.h"

using namespace lpd::daemon;
using lpd::protocol::ErrorCode;

namespace {

/// Collects what the dispatcher writes, as a session would send it.
struct RecordingSink : ReplySink {
  std::vector<json> lines;
  bool is_open = true;
  void send(std::string line) override { lines.push_back(json::parse(line)); }
  bool open() const override { return is_open; }
};

struct Fixture {
  std::shared_ptr<RecordingSink> sink = std::make_shared<RecordingSink>();
  Peer peer;
  std::optional<Responder> parked;
  Dispatcher dispatcher{{
      {"hello", "", [](Call& c) { c.peer.said_hello = true; return json{{"hi", true}}; }, true},
      {"echo", "", [](Call& c) { return json{{"text", c.fields.string("text")}}; }},
      {"later", "", [this](Call& c) { parked = c.defer(); return json(); }},
      {"boom", "", [](Call&) -> json { throw std::runtime_error("kaput"); }},
      {"note", "", [](Call& c) { c.peer.role = c.fields.string("role"); return json(); }},
  }};

  void send(const std::string& line) { dispatcher.dispatch_line(line, peer, sink); }
  std::string last_code() { return sink->lines.back()["error"]["code"]; }
};

}  // namespace

TEST_CASE_METHOD(Fixture, "hello must come first") {
  send(R"({"id":1,"op":"echo","text":"x"})");
  CHECK(last_code() == "bad_request");
  CHECK(sink->lines.back()["id"] == 1);
  CHECK(sink->lines.back()["error"]["message"] == "the first message on a connection must be \"hello\"");
  send(R"({"id":2,"op":"hello"})");
  CHECK(sink->lines.back()["ok"] == true);
  send(R"({"id":3,"op":"echo","text":"x"})");
  CHECK(sink->lines.back()["result"]["text"] == "x");
}

TEST_CASE_METHOD(Fixture, "each bad input gets its own error code") {
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

TEST_CASE_METHOD(Fixture, "notifications run without a reply, but their errors are reported") {
  peer.said_hello = true;
  send(R"({"op":"note","role":"shim"})");
  CHECK(peer.role == "shim");
  CHECK(sink->lines.empty());
  send(R"({"op":"note"})");
  REQUIRE(sink->lines.size() == 1);
  CHECK(sink->lines.back()["id"].is_null());
  CHECK(last_code() == "bad_request");
}

TEST_CASE_METHOD(Fixture, "a deferred request is answered once, later") {
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

TEST_CASE_METHOD(Fixture, "a deferred responder outlives its peer harmlessly") {
  peer.said_hello = true;
  send(R"({"id":9,"op":"later"})");
  sink->is_open = false;
  CHECK_FALSE(parked->connected());
  sink.reset();
  parked->fail(ErrorCode::kTimeout, "gone");  // nobody to tell; must not crash
  CHECK(parked->answered());
}
