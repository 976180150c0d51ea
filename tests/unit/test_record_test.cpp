// The shim's per-test records read off the line (protocol/test_record.h):
// what is taken, what is left to the general decoder, and that where it
// answers it answers as the general decoder (FlatMessage, then Fields) does.
#include <catch2/catch.hpp>

#include <cstdio>

#include "daemon/jobs/shim_fields.h"
#include "protocol/error.h"
#include "protocol/flat_message.h"
#include "protocol/json_text.h"
#include "protocol/test_record.h"
#include "tests/unit/manglings.h"

using namespace lpd::protocol;
using lpd::daemon::test_result_of;
using lpd::daemon::test_result_of_record;
using lpd::daemon::test_start_of;
using lpd::daemon::test_start_of_record;

namespace {

std::string start_line(const std::string& quoted) { return R"({"op":"test.start","nodeid":)" + quoted + "}"; }
std::string passed_line(const std::string& quoted, const std::string& duration) {
  return R"({"op":"test.finish","nodeid":)" + quoted + R"(,"outcome":"passed","phase":"call","duration":)" +
         duration + R"(,"message":""})";
}

/// The error `decode` throws, as (code, message); {kInternal, ""} when none.
template <typename Decode>
std::pair<ErrorCode, std::string> decode_error(Decode decode) {
  try {
    decode();
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  return {ErrorCode::kInternal, ""};
}

/// Where parse_test_record takes `line`, the general decoder must take it
/// too and make the same TestStart or TestResult of it (or the same error).
void check_same_as_general(const std::string& line) {
  const auto record = parse_test_record(line);
  if (!record) return;
  INFO(line);
  const auto flat = parse_flat_message(line);
  REQUIRE(flat);
  CHECK(flat->op == record->op());
  const Fields fields(*flat);
  if (record->kind == TestRecord::Kind::kStart) {
    const auto general = test_start_of(fields);
    const auto fast = test_start_of_record(*record);
    CHECK(fast.nodeid == general.nodeid);
    CHECK(fast.phase == general.phase);
    return;
  }
  const auto general_error = decode_error([&] { test_result_of(fields); });
  const auto fast_error = decode_error([&] { test_result_of_record(*record); });
  CHECK(fast_error == general_error);
  if (!general_error.second.empty()) return;
  CHECK(test_result_of_record(*record).to_json() == test_result_of(fields).to_json());
}

}  // namespace

TEST_CASE("the shim's two per-test records are read off the line", "[protocol][testrecord]") {
  // The record's nodeid is a view into the line: the lines outlive them.
  const std::string start_text = start_line(R"("t.py::test_x[1-a b]")");
  const auto start = parse_test_record(start_text);
  REQUIRE(start);
  CHECK(start->kind == TestRecord::Kind::kStart);
  CHECK(start->nodeid == "t.py::test_x[1-a b]");
  CHECK(start->op() == "test.start");

  const std::string passed_text = passed_line(R"("t.py::test_y")", "1.2345e-05");
  const auto passed = parse_test_record(passed_text);
  REQUIRE(passed);
  CHECK(passed->kind == TestRecord::Kind::kPassed);
  CHECK(passed->nodeid == "t.py::test_y");
  CHECK(passed->duration == 1.2345e-05);
  CHECK(passed->op() == "test.finish");
  CHECK(parse_test_record(passed_line(R"("")", "0.0"))->nodeid.empty());
  CHECK(parse_test_record(passed_line(R"("a")", "7"))->duration == 7);
}

TEST_CASE("anything but the shim's exact text is left to the general decoder", "[protocol][testrecord]") {
  for (const std::string& line : {
           // Escapes and bytes past ASCII in the nodeid: only the decoder undoes them.
           start_line(R"("t.py::a\"b")"), start_line(R"("t.py::a\\b")"), start_line(R"("t\u00e9")"),
           start_line("\"t\xc3\xa9\""), start_line("\"t\tx\""), start_line(R"("t.py::a)"),
           // Another spelling of the same message: other order, spaces, more fields, a newline.
           std::string(R"({"nodeid":"t.py::a","op":"test.start"})"), std::string(R"({"op":"test.start", "nodeid":"a"})"),
           std::string(R"({"op":"test.start","nodeid":"a","phase":"call"})"), start_line(R"("a")") + "\n",
           start_line(R"("a")") + " ", " " + start_line(R"("a")"), start_line(R"("a")") + "}",
           // Not passed, another phase, a message, a number JSON does not allow.
           std::string(R"({"op":"test.finish","nodeid":"a","outcome":"failed","phase":"call","duration":1.0,"message":""})"),
           std::string(R"({"op":"test.finish","nodeid":"a","outcome":"passed","phase":"setup","duration":1.0,"message":""})"),
           std::string(R"({"op":"test.finish","nodeid":"a","outcome":"passed","phase":"call","duration":1.0,"message":"x"})"),
           passed_line(R"("a")", "01"), passed_line(R"("a")", "1."), passed_line(R"("a")", ".5"), passed_line(R"("a")", "+1"),
           passed_line(R"("a")", "1e"), passed_line(R"("a")", "-"), passed_line(R"("a")", "inf"), passed_line(R"("a")", "NaN"),
           passed_line(R"("a")", "1e400"), passed_line(R"("a")", ""), passed_line(R"("a")", "\"1\""),
           passed_line(R"("a")", "null"), passed_line(R"("a")", "0x10"), passed_line(R"("a")", "1 "),
           // Requests and other ops.
           std::string(R"({"op":"test.phase","nodeid":"a","phase":"call"})"), std::string(R"({"id":1,"op":"test.start","nodeid":"a"})"),
           std::string(""), std::string("{"), std::string(R"({"op":"test.start","nodeid":)"),
       }) {
    INFO(line);
    CHECK_FALSE(parse_test_record(line));
  }
}

TEST_CASE("a record read off the line decodes as the general decoder decodes it", "[protocol][testrecord]") {
  // Durations as Python's repr(float) writes them, and numbers at the edges
  // of the range lpd takes: the same value, or the same refusal.
  for (const char* duration : {"0.0", "1.2345e-05", "5e-324", "1.7976931348623157e+308", "31536000.0", "31536000.5",
                               "-0.0", "-1.5", "3", "0", "-0", "1E+2", "2.5e3"})
    check_same_as_general(passed_line(R"("t.py::test_x[1]")", duration));
  // A nodeid over lpd's bound is shortened the same way on both paths.
  const std::string long_id = "\"t.py::test_x[" + std::string(kMaxNodeidBytes + 10, 'x') + "]\"";
  check_same_as_general(start_line(long_id));
  check_same_as_general(passed_line(long_id, "0.5"));
  REQUIRE(parse_test_record(passed_line(long_id, "0.5")));
  CHECK(test_result_of_record(*parse_test_record(passed_line(long_id, "0.5"))).nodeid.size() <= kMaxNodeidBytes);
  // A duration outside 0 s .. one year: refused as any test.finish's.
  CHECK(decode_error([] { test_result_of_record(*parse_test_record(passed_line(R"("a")", "-1.5"))); }) ==
        std::pair{ErrorCode::kBadRequest, std::string("field \"duration\" must be a number of seconds between 0 and one year")});
}

TEST_CASE("mangled records are taken only where the general decoder agrees", "[protocol][testrecord]") {
  // Every one-byte change, cut and insertion of both records.
  const std::string bytes = "{}[]:,\"\\/ \t-+.0123456789eEaxnu\x80\xc3\xff";
  for (const std::string& seed : {start_line(R"("t.py::t[1]")"), passed_line(R"("t.py::t[1]")", "1.5e-05")})
    for_each_mangling(seed, bytes, [](const std::string& line) { check_same_as_general(line); });
}

TEST_CASE("json_number_prefix follows JSON's number grammar", "[protocol][json]") {
  const std::pair<const char*, std::size_t> cases[] = {
      {"0", 1},     {"-0", 2},    {"12", 2},    {"01", 1},   {"-01", 2},   {"1.5", 3},     {"1.", 1},  {"1.e5", 1},
      {".5", 0},    {"-", 0},     {"+1", 0},    {"1e5", 3},  {"1E+5", 4},  {"1e-05", 5},   {"1e", 1},  {"1e+", 1},
      {"1.5e3,", 5}, {"12}", 2},  {"", 0},      {"x", 0},    {"-.5", 0},   {"123abc", 3},  {"0.0", 3}, {"2.5e3x", 5},
  };
  for (const auto& [text, length] : cases) {
    INFO(text);
    CHECK(json_number_prefix(text) == length);
  }
}
