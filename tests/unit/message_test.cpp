#include <catch2/catch.hpp>

#include "protocol/message.h"

using namespace lpd::protocol;

namespace {
ErrorCode code_of(std::string_view line) {
  try {
    parse_message(line);
  } catch (const Error& e) {
    return e.code();
  }
  FAIL("expected an error for " << line);
  return ErrorCode::kInternal;
}
std::string message_of(std::string_view line) {
  try {
    parse_message(line);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("requests, notifications, replies and pushes round-trip") {
  auto request = parse_message(encode_request(7, "pause.resume", {{"pause_id", "abc"}}));
  CHECK(request.kind == Kind::kRequest);
  CHECK(request.op() == "pause.resume");
  CHECK(request.id() == 7);
  CHECK(request.body["pause_id"] == "abc");

  auto string_id = parse_message(encode_request("x-1", "ping"));
  CHECK(string_id.kind == Kind::kRequest);
  CHECK(string_id.id() == "x-1");

  auto note = parse_message(encode_notification("test.start", {{"nodeid", "t.py::a"}}));
  CHECK(note.kind == Kind::kNotification);
  CHECK(note.body["nodeid"] == "t.py::a");

  auto ok = parse_message(encode_reply_ok(7, {{"x", 1}}));
  CHECK(ok.kind == Kind::kReply);
  CHECK(result_or_throw(ok.body)["x"] == 1);

  auto err = parse_message(encode_reply_error(7, ErrorCode::kNotFound, "no such pause"));
  CHECK(err.kind == Kind::kReply);
  try {
    result_or_throw(err.body);
    FAIL("error reply must throw");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kNotFound);
    CHECK(std::string(e.what()) == "no such pause");
  }

  auto push = parse_message(encode_push("pause.created", {{"pause_id", "p"}}));
  CHECK(push.kind == Kind::kPush);
  CHECK(push.body["data"]["pause_id"] == "p");
}

TEST_CASE("encoded messages are exactly one line") {
  const std::string line = encode_request(1, "x", {{"text", "a\nb"}});
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
}

TEST_CASE("invalid UTF-8 does not break encoding") {
  const std::string line = encode_reply_error(1, ErrorCode::kBadRequest, std::string("bad \xff byte"));
  CHECK(parse_message(line).kind == Kind::kReply);
}

TEST_CASE("every malformed message is a bad_request with a clear message") {
  CHECK(code_of("not json") == ErrorCode::kBadRequest);
  CHECK(message_of("not json") == "message is not valid JSON");
  CHECK(code_of("{\"op\":\"ping\"") == ErrorCode::kBadRequest);
  CHECK(code_of("[1,2]") == ErrorCode::kBadRequest);
  CHECK(message_of("[1,2]") == "message must be a JSON object, got array");
  CHECK(message_of("42") == "message must be a JSON object, got number");
  CHECK(message_of("{}") == "message has no \"op\"");
  CHECK(message_of("{\"id\":1}") == "message has no \"op\"");
  CHECK(message_of("{\"id\":1,\"op\":5}") == "\"op\" must be a non-empty string");
  CHECK(message_of("{\"id\":1,\"op\":\"\"}") == "\"op\" must be a non-empty string");
  CHECK(message_of("{\"id\":1.5,\"op\":\"ping\"}") == "\"id\" must be an integer or a string");
  CHECK(message_of("{\"id\":[1],\"op\":\"ping\"}") == "\"id\" must be an integer or a string");
  CHECK(message_of("{\"event\":3}") == "\"event\" must be a string");
  CHECK(message_of("{\"ok\":1,\"id\":1}") == "\"ok\" must be a boolean");
  CHECK(message_of("{\"ok\":true}") == "reply has no \"id\"");
}

TEST_CASE("error codes have stable names both ways") {
  const std::vector<std::pair<ErrorCode, std::string>> expected = {
      {ErrorCode::kBadRequest, "bad_request"}, {ErrorCode::kUnknownOp, "unknown_op"},
      {ErrorCode::kNotFound, "not_found"},     {ErrorCode::kPermissionDenied, "permission_denied"},
      {ErrorCode::kConflict, "conflict"},      {ErrorCode::kTooLarge, "too_large"},
      {ErrorCode::kTimeout, "timeout"},        {ErrorCode::kUnavailable, "unavailable"},
      {ErrorCode::kInternal, "internal"},
  };
  for (const auto& [code, name] : expected) {
    CHECK(to_string(code) == name);
    CHECK(error_code_from_string(name) == code);
  }
  CHECK_FALSE(error_code_from_string("nope").has_value());
}
