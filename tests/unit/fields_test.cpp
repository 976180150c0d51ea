#include <catch2/catch.hpp>

#include "protocol/error.h"
#include "protocol/fields.h"

using namespace lpd::protocol;
using nlohmann::json;

namespace {
std::string bad_request_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kBadRequest);
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("Fields returns typed values") {
  json body = {{"s", "x"}, {"i", 5}, {"t", 1.5}, {"b", true}, {"l", {"a", "b"}}, {"m", {{"K", "V"}}}, {"n", nullptr}};
  Fields f(body);
  CHECK(f.string("s") == "x");
  CHECK(f.integer("i") == 5);
  CHECK(f.optional_seconds("t") == 1.5);
  CHECK(f.optional_seconds("i") == 5.0);
  CHECK(f.optional_boolean("b") == true);
  CHECK(f.string_list("l") == std::vector<std::string>{"a", "b"});
  CHECK(f.string_map("m").at(0) == std::pair<std::string, std::string>{"K", "V"});
  CHECK_FALSE(f.optional_string("n").has_value());  // null counts as absent
  CHECK_FALSE(f.optional_string("absent").has_value());
  CHECK(f.string_list("absent").empty());
}

TEST_CASE("Fields names the field and the wanted type on bad input") {
  json body = {{"s", 1}, {"i", "x"}, {"t", -1}, {"l", {1}}, {"m", {{"K", 1}}}, {"b", "yes"}, {"f", 2.5}};
  Fields f(body);
  CHECK(bad_request_message([&] { f.string("missing"); }) == "missing field \"missing\"");
  CHECK(bad_request_message([&] { f.string("s"); }) == "field \"s\" must be a string");
  CHECK(bad_request_message([&] { f.integer("i"); }) == "field \"i\" must be an integer");
  CHECK(bad_request_message([&] { f.integer("f"); }) == "field \"f\" must be an integer");
  CHECK(bad_request_message([&] { f.optional_seconds("t"); }) ==
        "field \"t\" must be a number of seconds between 0 and one year");
  CHECK(bad_request_message([&] { f.string_list("l"); }) == "field \"l\" must be an array of strings");
  CHECK(bad_request_message([&] { f.string_map("m"); }) == "field \"m\" must be an object of string values");
  CHECK(bad_request_message([&] { f.optional_boolean("b"); }) == "field \"b\" must be true or false");
}
