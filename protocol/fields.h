#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/flat_message.h"

namespace lpd::protocol {

/// Typed access to a message's fields. Each getter throws Error(kBadRequest)
/// naming the field and the type it wanted, so every handler rejects missing
/// or mistyped input with the same clear wording.
class Fields {
 public:
  explicit Fields(const nlohmann::json& body) : body_(&body) {}
  /// The members of a message decoded without a tree (FlatMessage).
  explicit Fields(const FlatMessage& flat) : flat_(&flat) {}

  std::string string(std::string_view name) const;
  std::optional<std::string> optional_string(std::string_view name) const;
  /// optional_string() without a copy: a view into the message, valid
  /// while the message this Fields reads lives.
  std::optional<std::string_view> optional_string_view(std::string_view name) const;
  std::int64_t integer(std::string_view name) const;
  std::optional<std::int64_t> optional_integer(std::string_view name) const;
  /// Seconds as a non-negative number (integer or fractional).
  std::optional<double> optional_seconds(std::string_view name) const;
  std::optional<bool> optional_boolean(std::string_view name) const;
  std::vector<std::string> string_list(std::string_view name) const;  // absent -> empty
  /// A JSON object of string values (like an environment), absent -> empty.
  std::vector<std::pair<std::string, std::string>> string_map(std::string_view name) const;
  bool has(std::string_view name) const;
  /// The member's value as it came (nullptr when absent or null), for a
  /// field that may have more than one type. For a flat message the value
  /// is made into JSON on first use and kept as long as this Fields.
  const nlohmann::json* raw(std::string_view name) const;

 private:
  const nlohmann::json* find(std::string_view name) const;
  const FlatValue* find_flat(std::string_view name) const;
  const nlohmann::json* body_ = nullptr;
  const FlatMessage* flat_ = nullptr;
  /// raw()'s values of a flat message (a list: pointers to them stay valid).
  mutable std::list<nlohmann::json> made_;
};

/// `s` when it is a number of seconds a field may hold (finite, 0 to one
/// year); else throws Error(kBadRequest) naming field `name`, in
/// optional_seconds()'s words.
double seconds_in_range(std::string_view name, double s);

}  // namespace lpd::protocol
