#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lpd::protocol {

/// FlatMessage is a one-way message (a notification: "op", no "id") whose
/// values are all scalars, decoded without building a JSON tree. The
/// per-test messages of the event ring have this shape
/// ({"op":"test.finish","nodeid":"t.py::test_x","outcome":"passed",...}),
/// tens of thousands per run, and a tree per message was most of what lpd
/// spent on them.
struct FlatMessage {
  std::string op;
  /// Every member but "op", in line order; values are null, booleans,
  /// numbers or strings.
  std::vector<std::pair<std::string, nlohmann::json>> fields;

  /// The value of member `name`, or nullptr. A name given twice means its
  /// last value, as the JSON parser keeps it.
  const nlohmann::json* find(std::string_view name) const;
};

/// `line` as a FlatMessage when it is one JSON object of scalar values with
/// a non-empty string "op" and none of "id", "event", "ok"; nullopt for
/// anything else, valid or not (nested values, requests, replies, bad JSON):
/// the caller then decodes it with parse_message(), which says what is wrong.
std::optional<FlatMessage> parse_flat_message(std::string_view line);

}  // namespace lpd::protocol
