#pragma once

#include <optional>
#include <string_view>

namespace lpd::protocol {

/// The two records every passing test of a suite sends (a test.start, and a
/// test.finish saying passed), recognised in exactly the text the Python
/// shim writes them (lpd_pytest/messages.py TEST_START_FORMAT and
/// TEST_PASSED_FORMAT, byte for byte the same from its C ring writer):
///
///   {"op":"test.start","nodeid":"N"}
///   {"op":"test.finish","nodeid":"N","outcome":"passed","phase":"call","duration":D,"message":""}
///
/// with N a JSON string of printable ASCII and no escape, and D a JSON
/// number. Two per test, tens of thousands a run: decoding them as any
/// message (FlatMessage, then Fields' lookups and copies) was a third of
/// lpd's CPU per test. Anything else, however close, is left to the
/// general decoder, which has the last word on what is valid; where this
/// answers, the general decoder gives the same op and values (the unit and
/// fuzz tests hold the two to that).
struct TestRecord {
  enum class Kind : unsigned char { kStart, kPassed };
  Kind kind = Kind::kStart;
  /// The nodeid, as it stands in the line (no escape to undo): a view into
  /// the line, valid while the line is.
  std::string_view nodeid;
  /// kPassed: the duration as written, in seconds; any finite number (the
  /// range is the handler's to check, as for any test.finish).
  double duration = 0;

  /// "test.start" or "test.finish".
  std::string_view op() const { return kind == Kind::kStart ? "test.start" : "test.finish"; }
};

/// `line` (without its newline) as a TestRecord when it is one of the two
/// texts above exactly; nullopt for anything else.
std::optional<TestRecord> parse_test_record(std::string_view line);

}  // namespace lpd::protocol
