#include <catch2/catch.hpp>

#include "protocol/error.h"
#include "protocol/fields.h"

using namespace lpd::protocol;
using nlohmann::json;

namespace {
std::string error_of(const std::function<void()>& f) {
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
  CHECK(error_of([&] { f.string("missing"); }) == "missing field \"missing\"");
  CHECK(error_of([&] { f.string("s"); }) == "field \"s\" must be a string");
  CHECK(error_of([&] { f.integer("i"); }) == "field \"i\" must be an integer");
  CHECK(error_of([&] { f.integer("f"); }) == "field \"f\" must be an integer");
  CHECK(error_of([&] { f.optional_seconds("t"); }) ==
        "field \"t\" must be a number of seconds between 0 and one year");
  CHECK(error_of([&] { f.string_list("l"); }) == "field \"l\" must be an array of strings");
  CHECK(error_of([&] { f.string_map("m"); }) == "field \"m\" must be an object of string values");
  CHECK(error_of([&] { f.optional_boolean("b"); }) == "field \"b\" must be true or false");
}
