// protocol::name_in / value_named: an enum's words, looked up both ways.
#include <catch2/catch.hpp>

#include <array>
#include <string_view>
#include <utility>

#include "protocol/name_table.h"

namespace {
enum class Color { kRed, kGreen, kBlue };
constexpr std::array<std::pair<Color, std::string_view>, 2> kColors{{{Color::kRed, "red"}, {Color::kGreen, "green"}}};
}  // namespace

TEST_CASE("a value's name, and the value a name stands for", "[name_table]") {
  using lpd::protocol::name_in;
  using lpd::protocol::value_named;
  CHECK(name_in(kColors, Color::kGreen, "?") == "green");
  CHECK(name_in(kColors, Color::kBlue, "?") == "?");  // not in the table
  CHECK(value_named(kColors, "red") == Color::kRed);
  CHECK_FALSE(value_named(kColors, "Red").has_value());  // exact words only
  CHECK_FALSE(value_named(kColors, "").has_value());
}
