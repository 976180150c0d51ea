#pragma once

#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

namespace lpd::client {

/// The width of a table column holding each row's string field `key`:
/// its longest value in `rows` (a JSON array of objects), at least
/// `at_least` (the header's and the usual value's width). A run's name
/// makes its id up to 64 characters longer than the usual 22.
inline int column_width(const nlohmann::json& rows, const char* key, int at_least) {
  std::size_t width = static_cast<std::size_t>(at_least);
  if (!rows.is_array()) return at_least;
  for (const auto& row : rows) {
    if (!row.is_object()) continue;
    const auto value = row.find(key);
    if (value != row.end() && value->is_string()) width = std::max(width, value->get_ref<const std::string&>().size());
  }
  return static_cast<int>(std::min<std::size_t>(width, 200));
}

}  // namespace lpd::client
