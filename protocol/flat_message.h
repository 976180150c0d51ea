#pragma once

#include <cstdint>
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
/// FlatValue is one member's value, kept as plain C++ (a JSON value per
/// member was a heap node per string, made and freed for every record): a
/// scalar, or an array of strings (collection.items' nodeids, thousands a
/// run).
struct FlatValue {
  /// JSON's scalar kinds, split as nlohmann's parser splits numbers:
  /// kUnsigned for a non-negative integer, kInteger for a negative one,
  /// kFloat for anything with a fraction or exponent; kStrings for an
  /// array whose items are all strings (empty included).
  enum class Kind : unsigned char { kNull, kBoolean, kInteger, kUnsigned, kFloat, kString, kStrings };
  Kind kind = Kind::kNull;
  bool boolean = false;
  std::int64_t integer = 0;
  std::uint64_t unsigned_integer = 0;
  double number = 0;
  std::string text;  // kString: the decoded string (UTF-8)
  std::vector<std::string> strings;  // kStrings: the decoded items, in order

  bool is_null() const { return kind == Kind::kNull; }
  bool is_number() const { return kind == Kind::kInteger || kind == Kind::kUnsigned || kind == Kind::kFloat; }
  /// The number as a double (kInteger, kUnsigned or kFloat), as json's get<double>().
  double as_double() const;
  /// The same value as a JSON value (what the JSON parser makes of it).
  nlohmann::json to_json() const;
};

struct FlatMessage {
  std::string op;
  /// Every member but "op", in line order; values are null, booleans,
  /// numbers, strings or arrays of strings.
  std::vector<std::pair<std::string, FlatValue>> fields;

  /// The value of member `name`, or nullptr. A name given twice means its
  /// last value, as the JSON parser keeps it.
  const FlatValue* find(std::string_view name) const;
};

/// `line` as a FlatMessage when it is one JSON object of scalar values (or
/// arrays of strings) with a non-empty string "op" and none of "id",
/// "event", "ok"; nullopt for anything else, valid or not (objects or other
/// arrays as values, requests, replies, bad JSON):
/// the caller then decodes it with parse_message(), which says what is wrong.
std::optional<FlatMessage> parse_flat_message(std::string_view line);

/// The members of `line`, in line order (a name given twice is there
/// twice: the last is the one JSON keeps), when it is one JSON object of
/// scalar values or arrays of strings; nullopt for anything else (nested
/// objects or arrays, another document, bad JSON). No member is special:
/// "op" is one like the others. For flat records lpd reads back from its
/// own journals (crashes.jsonl: 10,000 records of 4 KiB tracebacks), where
/// a JSON library's lexer, one character at a time, was a third of start-up.
std::optional<std::vector<std::pair<std::string, FlatValue>>> parse_flat_object(std::string_view line);

}  // namespace lpd::protocol
