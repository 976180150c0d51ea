#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lpd::daemon {

/// Reading records lpd stored (job.json, run.json, crash lines, pauses...)
/// back from a state directory that a crash, a full disk or a person may
/// have damaged. Each field is taken only when it has the right JSON type
/// and, for integers, fits the C++ type; otherwise the fallback. Never
/// throws (a restore that throws stops lpd starting), never converts out
/// of range (nlohmann's get<int>() of 1e300 is undefined behaviour).
/// Replaces nlohmann's `j.value(key, fallback)` in every from_json.

/// An integer of type T, or nullopt when missing, not an integer, or out of T's range.
template <typename T>
std::optional<T> integer_field(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  const auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  if (it->is_number_unsigned()) {
    const auto value = it->template get<std::uint64_t>();
    if (std::in_range<T>(value)) return static_cast<T>(value);
  } else if (it->is_number_integer()) {
    const auto value = it->template get<std::int64_t>();
    if (std::in_range<T>(value)) return static_cast<T>(value);
  }
  return std::nullopt;
}

namespace record_field_detail {

template <typename T>
std::optional<T> convert(const nlohmann::json& v);

template <typename T>
struct is_vector : std::false_type {};
template <typename T>
struct is_vector<std::vector<T>> : std::true_type {};
template <typename T>
struct is_string_map : std::false_type {};
template <typename T>
struct is_string_map<std::map<std::string, T>> : std::true_type {};

template <typename T>
std::optional<T> convert(const nlohmann::json& v) {
  if constexpr (std::is_same_v<T, nlohmann::json>) {
    return v;
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (v.is_string()) return v.template get<std::string>();
  } else if constexpr (std::is_same_v<T, bool>) {
    if (v.is_boolean()) return v.template get<bool>();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (v.is_number()) return v.template get<T>();
  } else if constexpr (std::is_integral_v<T>) {
    const nlohmann::json wrapper = {{"v", v}};
    return integer_field<T>(wrapper, "v");
  } else if constexpr (is_vector<T>::value) {
    if (!v.is_array()) return std::nullopt;
    T out;
    for (const auto& item : v) {
      auto converted = convert<typename T::value_type>(item);
      if (!converted) return std::nullopt;
      out.push_back(std::move(*converted));
    }
    return out;
  } else if constexpr (is_string_map<T>::value) {
    if (!v.is_object()) return std::nullopt;
    T out;
    for (const auto& [key, item] : v.items()) {
      auto converted = convert<typename T::mapped_type>(item);
      if (!converted) return std::nullopt;
      out.emplace(key, std::move(*converted));
    }
    return out;
  }
  return std::nullopt;
}

}  // namespace record_field_detail

/// Field `key` of record `j` as T, or `fallback` (missing, mistyped, out of range).
template <typename T>
T field_or(const nlohmann::json& j, const char* key, T fallback) {
  if (!j.is_object()) return fallback;
  const auto it = j.find(key);
  if (it == j.end()) return fallback;
  auto converted = record_field_detail::convert<T>(*it);
  return converted ? std::move(*converted) : std::move(fallback);
}

/// A string field; `fallback` as text (so `field_or(j, "name", "")` reads as j.value does).
inline std::string field_or(const nlohmann::json& j, const char* key, const char* fallback) {
  return field_or<std::string>(j, key, std::string(fallback));
}

}  // namespace lpd::daemon
