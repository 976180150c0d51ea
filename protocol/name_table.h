#pragma once

#include <iterator>
#include <optional>
#include <string_view>
#include <type_traits>

namespace lpd::protocol {

/// The name `value` has in `table` (an array of {value, name} pairs: an
/// enum's words on the wire and on disk), or `otherwise` when it has none.
template <typename Table, typename Value>
constexpr std::string_view name_in(const Table& table, Value value, std::string_view otherwise) {
  for (const auto& [v, name] : table)
    if (v == value) return name;
  return otherwise;
}

/// The value `name` stands for in `table` (see name_in), or nullopt.
template <typename Table>
constexpr auto value_named(const Table& table, std::string_view name)
    -> std::optional<std::remove_cvref_t<decltype(std::begin(table)->first)>> {
  for (const auto& [value, n] : table)
    if (n == name) return value;
  return std::nullopt;
}

}  // namespace lpd::protocol
