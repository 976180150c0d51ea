// result_or_throw on replies whose members are missing or of another type:
// only protocol::Error may come out (lpctl and the native shim catch that),
// never a json::type_error. Found by fuzz/message_fuzz.cpp (issue 13, piece
// "fuzz").

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "protocol/error.h"
#include "protocol/message.h"

using lpd::protocol::Error;
using lpd::protocol::ErrorCode;
using lpd::protocol::result_or_throw;
using nlohmann::json;

namespace {

/// The Error result_or_throw raises for `reply`; fails the test otherwise.
Error reply_error(const json& reply) {
  try {
    result_or_throw(reply);
  } catch (const Error& e) {
    return e;
  } catch (const std::exception& e) {
    FAIL("not a protocol::Error: " << e.what());
  }
  FAIL("no error for " << reply.dump());
  return Error(ErrorCode::kInternal, "");
}

}  // namespace

TEST_CASE("a good reply gives its result") {
  CHECK(result_or_throw(json::parse(R"({"id":1,"ok":true,"result":{"a":1}})")) == json{{"a", 1}});
  CHECK(result_or_throw(json::parse(R"({"id":1,"ok":true})")) == json::object());
}

TEST_CASE("a failed reply throws the error it carries") {
  const Error e = reply_error(json::parse(R"({"id":1,"ok":false,"error":{"code":"not_found","message":"no run"}})"));
  CHECK(e.code() == ErrorCode::kNotFound);
  CHECK(std::string(e.what()) == "no run");
}

TEST_CASE("a failed reply with mistyped members is an internal Error, not a json exception") {
  for (const char* text : {R"({"id":1,"ok":false,"error":"x"})", R"({"id":1,"ok":false,"error":{"code":5}})",
                           R"({"id":1,"ok":false,"error":{"code":"not_found","message":[1]}})",
                           R"({"id":1,"ok":"yes"})", R"([1,2])", R"("text")"}) {
    INFO(text);
    const Error e = reply_error(json::parse(text));
    CHECK((e.code() == ErrorCode::kInternal || e.code() == ErrorCode::kNotFound));
  }
  CHECK(reply_error(json::parse(R"({"id":1,"ok":false,"error":"x"})")).code() == ErrorCode::kInternal);
  CHECK(std::string(reply_error(json::parse(R"({"id":1,"ok":false,"error":{"code":5}})")).what()) == "request failed");
}
