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
  if (flat_) {
    const nlohmann::json* value = flat_->find(name);
    return value && !value->is_null() ? value : nullptr;
  }
  if (!body_ || !body_->is_object()) return nullptr;
  auto it = body_->find(name);
  if (it == body_->end() || it->is_null()) return nullptr;
  return &*it;
}

bool Fields::has(std::string_view name) const { return find(name) != nullptr; }

std::string Fields::string(std::string_view name) const {
  auto value = optional_string(name);
  if (!value) missing(name);
  return *value;
}

std::optional<std::string> Fields::optional_string(std::string_view name) const {
  const auto* v = find(name);
  if (!v) return std::nullopt;
  if (!v->is_string()) wrong(name, "a string");
  return v->get<std::string>();
}

std::int64_t Fields::integer(std::string_view name) const {
  auto value = optional_integer(name);
  if (!value) missing(name);
  return *value;
}

std::optional<std::int64_t> Fields::optional_integer(std::string_view name) const {
  const auto* v = find(name);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) {
    if (v->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) wrong(name, "an integer in range");
    return static_cast<std::int64_t>(v->get<std::uint64_t>());
  }
  if (!v->is_number_integer()) wrong(name, "an integer");
  return v->get<std::int64_t>();
}

std::optional<double> Fields::optional_seconds(std::string_view name) const {
  const auto* v = find(name);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong(name, "a number of seconds");
  const double s = v->get<double>();
  if (!std::isfinite(s) || s < 0 || s > 365.0 * 24 * 3600) wrong(name, "a number of seconds between 0 and one year");
  return s;
}

std::optional<bool> Fields::optional_boolean(std::string_view name) const {
  const auto* v = find(name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) wrong(name, "true or false");
  return v->get<bool>();
}

std::vector<std::string> Fields::string_list(std::string_view name) const {
  std::vector<std::string> out;
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
  const auto* v = find(name);
  if (!v) return out;
  if (!v->is_object()) wrong(name, "an object of string values");
  for (const auto& [key, value] : v->items()) {
    if (!value.is_string()) wrong(name, "an object of string values");
    out.emplace_back(key, value.get<std::string>());
  }
  return out;
}

}  // namespace lpd::protocol
