#include "protocol/fields.h"

#include <cmath>

#include "protocol/error.h"

namespace lpd::protocol {
namespace {

[[noreturn]] void wrong(std::string_view name, std::string_view wanted) {
  throw Error(ErrorCode::kBadRequest,
              "field \"" + std::string(name) + "\" must be " + std::string(wanted));
}

[[noreturn]] void missing(std::string_view name) {
  throw Error(ErrorCode::kBadRequest, "missing field \"" + std::string(name) + "\"");
}

}  // namespace

const nlohmann::json* Fields::find(std::string_view name) const {
  if (flat_) return nullptr;  // a flat message has no tree: find_flat
  if (!body_ || !body_->is_object()) return nullptr;
  auto it = body_->find(name);
  if (it == body_->end() || it->is_null()) return nullptr;
  return &*it;
}

const FlatValue* Fields::find_flat(std::string_view name) const {
  const FlatValue* value = flat_->find(name);
  return value && !value->is_null() ? value : nullptr;
}

const nlohmann::json* Fields::raw(std::string_view name) const {
  if (!flat_) return find(name);
  const FlatValue* value = find_flat(name);
  if (!value) return nullptr;
  return &made_.emplace_back(value->to_json());
}

bool Fields::has(std::string_view name) const { return flat_ ? find_flat(name) != nullptr : find(name) != nullptr; }

std::string Fields::string(std::string_view name) const {
  auto value = optional_string_view(name);
  if (!value) missing(name);
  return std::string(*value);
}

std::optional<std::string> Fields::optional_string(std::string_view name) const {
  auto value = optional_string_view(name);
  if (!value) return std::nullopt;
  return std::string(*value);
}

std::optional<std::string_view> Fields::optional_string_view(std::string_view name) const {
  if (flat_) {
    const FlatValue* v = find_flat(name);
    if (!v) return std::nullopt;
    if (v->kind != FlatValue::Kind::kString) wrong(name, "a string");
    return std::string_view(v->text);
  }
  const auto* v = find(name);
  if (!v) return std::nullopt;
  if (!v->is_string()) wrong(name, "a string");
  return std::string_view(v->get_ref<const std::string&>());
}

std::int64_t Fields::integer(std::string_view name) const {
  auto value = optional_integer(name);
  if (!value) missing(name);
  return *value;
}

namespace {

/// The checks every integer field gets, on the value's kind and numbers
/// (a flat value or a JSON one).
std::int64_t integer_in_range(std::string_view name, bool is_unsigned, std::uint64_t unsigned_value, bool is_signed,
                              std::int64_t signed_value) {
  if (is_unsigned) {
    if (unsigned_value > static_cast<std::uint64_t>(INT64_MAX)) wrong(name, "an integer in range");
    return static_cast<std::int64_t>(unsigned_value);
  }
  if (!is_signed) wrong(name, "an integer");
  return signed_value;
}

}  // namespace

double seconds_in_range(std::string_view name, double s) {
  if (!std::isfinite(s) || s < 0 || s > 365.0 * 24 * 3600) wrong(name, "a number of seconds between 0 and one year");
  return s;
}

std::optional<std::int64_t> Fields::optional_integer(std::string_view name) const {
  if (flat_) {
    const FlatValue* v = find_flat(name);
    if (!v) return std::nullopt;
    return integer_in_range(name, v->kind == FlatValue::Kind::kUnsigned, v->unsigned_integer,
                            v->kind == FlatValue::Kind::kInteger, v->integer);
  }
  const auto* v = find(name);
  if (!v) return std::nullopt;
  const bool is_unsigned = v->is_number_unsigned();
  return integer_in_range(name, is_unsigned, is_unsigned ? v->get<std::uint64_t>() : 0, v->is_number_integer(),
                          v->is_number_integer() && !is_unsigned ? v->get<std::int64_t>() : 0);
}

std::optional<double> Fields::optional_seconds(std::string_view name) const {
  if (flat_) {
    const FlatValue* v = find_flat(name);
    if (!v) return std::nullopt;
    if (!v->is_number()) wrong(name, "a number of seconds");
    return seconds_in_range(name, v->as_double());
  }
  const auto* v = find(name);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong(name, "a number of seconds");
  return seconds_in_range(name, v->get<double>());
}

std::optional<bool> Fields::optional_boolean(std::string_view name) const {
  if (flat_) {
    const FlatValue* v = find_flat(name);
    if (!v) return std::nullopt;
    if (v->kind != FlatValue::Kind::kBoolean) wrong(name, "true or false");
    return v->boolean;
  }
  const auto* v = find(name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) wrong(name, "true or false");
  return v->get<bool>();
}

std::vector<std::string> Fields::string_list(std::string_view name) const {
  std::vector<std::string> out;
  if (flat_) {
    const FlatValue* v = find_flat(name);
    if (!v) return out;
    if (v->kind != FlatValue::Kind::kStrings) wrong(name, "an array of strings");
    return v->strings;
  }
  const auto* v = find(name);
  if (!v) return out;
  if (!v->is_array()) wrong(name, "an array of strings");
  for (const auto& item : *v) {
    if (!item.is_string()) wrong(name, "an array of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Fields::string_map(std::string_view name) const {
  std::vector<std::pair<std::string, std::string>> out;
  const auto* v = raw(name);
  if (!v) return out;
  if (!v->is_object()) wrong(name, "an object of string values");
  for (const auto& [key, value] : v->items()) {
    if (!value.is_string()) wrong(name, "an object of string values");
    out.emplace_back(key, value.get<std::string>());
  }
  return out;
}

}  // namespace lpd::protocol
