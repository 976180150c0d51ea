#include <catch2/catch.hpp>

#include "protocol/fields.h"
#include "protocol/flat_message.h"
#include "tests/unit/manglings.h"
#include "protocol/limits.h"
#include "protocol/message.h"

using namespace lpd::protocol;

namespace {
ErrorCode message_error_code(std::string_view line) {
  try {
    parse_message(line);
  } catch (const Error& e) {
    return e.code();
  }
  FAIL("expected an error for " << line);
  return ErrorCode::kInternal;
}
std::string message_of(std::string_view line) {
  try {
    parse_message(line);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("requests, notifications, replies and pushes round-trip") {
  auto request = parse_message(encode_request(7, "pause.resume", {{"pause_id", "abc"}}));
  CHECK(request.kind == Kind::kRequest);
  CHECK(request.op() == "pause.resume");
  CHECK(request.id() == 7);
  CHECK(request.body["pause_id"] == "abc");

  auto string_id = parse_message(encode_request("x-1", "ping"));
  CHECK(string_id.kind == Kind::kRequest);
  CHECK(string_id.id() == "x-1");

  auto note = parse_message(encode_notification("test.start", {{"nodeid", "t.py::a"}}));
  CHECK(note.kind == Kind::kNotification);
  CHECK(note.body["nodeid"] == "t.py::a");

  auto ok = parse_message(encode_reply_ok(7, {{"x", 1}}));
  CHECK(ok.kind == Kind::kReply);
  CHECK(result_or_throw(ok.body)["x"] == 1);

  auto err = parse_message(encode_reply_error(7, ErrorCode::kNotFound, "no such pause"));
  CHECK(err.kind == Kind::kReply);
  try {
    result_or_throw(err.body);
    FAIL("error reply must throw");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kNotFound);
    CHECK(std::string(e.what()) == "no such pause");
  }

  auto push = parse_message(encode_push("pause.created", {{"pause_id", "p"}}));
  CHECK(push.kind == Kind::kPush);
  CHECK(push.body["data"]["pause_id"] == "p");
}

TEST_CASE("encoded messages are exactly one line") {
  const std::string line = encode_request(1, "x", {{"text", "a\nb"}});
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
}

TEST_CASE("invalid UTF-8 does not break encoding") {
  const std::string line = encode_reply_error(1, ErrorCode::kBadRequest, std::string("bad \xff byte"));
  CHECK(parse_message(line).kind == Kind::kReply);
}

TEST_CASE("every malformed message is a bad_request with a clear message") {
  CHECK(message_error_code("not json") == ErrorCode::kBadRequest);
  CHECK(message_of("not json") == "message is not valid JSON");
  CHECK(message_error_code("{\"op\":\"ping\"") == ErrorCode::kBadRequest);
  CHECK(message_error_code("[1,2]") == ErrorCode::kBadRequest);
  CHECK(message_of("[1,2]") == "message must be a JSON object, got array");
  CHECK(message_of("42") == "message must be a JSON object, got number");
  CHECK(message_of("{}") == "message has no \"op\"");
  CHECK(message_of("{\"id\":1}") == "message has no \"op\"");
  CHECK(message_of("{\"id\":1,\"op\":5}") == "\"op\" must be a non-empty string");
  CHECK(message_of("{\"id\":1,\"op\":\"\"}") == "\"op\" must be a non-empty string");
  CHECK(message_of("{\"id\":1.5,\"op\":\"ping\"}") == "\"id\" must be an integer or a string");
  CHECK(message_of("{\"id\":[1],\"op\":\"ping\"}") == "\"id\" must be an integer or a string");
  CHECK(message_of("{\"event\":3}") == "\"event\" must be a string");
  CHECK(message_of("{\"ok\":1,\"id\":1}") == "\"ok\" must be a boolean");
  CHECK(message_of("{\"ok\":true}") == "reply has no \"id\"");
}

TEST_CASE("error codes have stable names both ways") {
  const std::vector<std::pair<ErrorCode, std::string>> expected = {
      {ErrorCode::kBadRequest, "bad_request"}, {ErrorCode::kUnknownOp, "unknown_op"},
      {ErrorCode::kNotFound, "not_found"},     {ErrorCode::kPermissionDenied, "permission_denied"},
      {ErrorCode::kConflict, "conflict"},      {ErrorCode::kTooLarge, "too_large"},
      {ErrorCode::kTimeout, "timeout"},        {ErrorCode::kUnavailable, "unavailable"},
      {ErrorCode::kInternal, "internal"},
  };
  for (const auto& [code, name] : expected) {
    CHECK(to_string(code) == name);
    CHECK(error_code_from_string(name) == code);
  }
  CHECK_FALSE(error_code_from_string("nope").has_value());
}

// -- FlatMessage: the event ring's per-test records without a JSON tree --

TEST_CASE("a flat notification reads the same through Fields as its JSON tree") {
  const std::string line =
      R"({"op":"test.finish","nodeid":"t.py::test_\u00e9[1]","outcome":"passed","duration":0.25,)"
      R"("line":12,"big":18446744073709551615,"neg":-3,"wasxfail":false,"message":null})";
  auto flat = parse_flat_message(line);
  REQUIRE(flat);
  CHECK(flat->op == "test.finish");
  CHECK_FALSE(flat->find("op"));  // "op" is not one of the fields
  const auto tree = parse_message(line);
  Fields a(*flat), b(tree.body);
  for (const char* name : {"nodeid", "outcome", "absent"}) CHECK(a.optional_string(name) == b.optional_string(name));
  CHECK(a.optional_seconds("duration") == b.optional_seconds("duration"));
  CHECK(a.optional_integer("line") == b.optional_integer("line"));
  CHECK(a.optional_integer("neg") == b.optional_integer("neg"));
  CHECK(a.optional_boolean("wasxfail") == b.optional_boolean("wasxfail"));
  CHECK_FALSE(a.has("message"));  // null is absent, as in the tree
  CHECK(*a.raw("big") == *b.raw("big"));
  CHECK(a.optional_string_view("nodeid") == b.optional_string_view("nodeid"));
  CHECK_FALSE(a.optional_string_view("message"));
  // The same wording for the same wrong input, whichever way it was decoded.
  const auto error_of = [](auto&& get) -> std::string {
    try {
      get();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  for (const char* name : {"big", "nodeid", "duration", "wasxfail"}) {
    INFO(name);
    CHECK(error_of([&] { a.optional_integer(name); }) == error_of([&] { b.optional_integer(name); }));
    CHECK(error_of([&] { a.optional_string(name); }) == error_of([&] { b.optional_string(name); }));
    CHECK(error_of([&] { a.optional_seconds(name); }) == error_of([&] { b.optional_seconds(name); }));
    CHECK(error_of([&] { a.optional_boolean(name); }) == error_of([&] { b.optional_boolean(name); }));
    CHECK(error_of([&] { a.string_list(name); }) == error_of([&] { b.string_list(name); }));
  }
  CHECK(error_of([&] { a.optional_integer("big"); }) == "field \"big\" must be an integer in range");
  CHECK_THROWS_AS(a.string("absent"), Error);
  CHECK_THROWS_AS(a.optional_integer("nodeid"), Error);  // same typed errors
}

// h13cpu (issue 13): collection.items' nodeids, thousands a run, come flat too.
TEST_CASE("an array of strings reads the same through Fields as its JSON tree") {
  const std::string line = R"({"op":"collection.items","nodeids":["t.py::a","t.py::b[\u00e9]"],"none":[],"n":3})";
  auto flat = parse_flat_message(line);
  REQUIRE(flat);
  const auto tree = parse_message(line);
  Fields a(*flat), b(tree.body);
  CHECK(a.string_list("nodeids") == std::vector<std::string>{"t.py::a", "t.py::b[\u00e9]"});
  CHECK(a.string_list("nodeids") == b.string_list("nodeids"));
  CHECK(a.string_list("none").empty());
  CHECK(a.string_list("absent").empty());
  CHECK(*a.raw("nodeids") == *b.raw("nodeids"));
  CHECK_THROWS_AS(a.string_list("n"), Error);
  CHECK_THROWS_AS(a.optional_string("nodeids"), Error);
}

TEST_CASE("a name given twice means its last value, as the JSON parser keeps it") {
  const std::string line = R"({"op":"test.start","nodeid":"first","nodeid":"second"})";
  auto flat = parse_flat_message(line);
  REQUIRE(flat);
  CHECK(Fields(*flat).string("nodeid") == parse_message(line).body["nodeid"]);
}

TEST_CASE("anything but a flat notification is left to parse_message") {
  for (const char* line : {
           R"({"op":"test.start","nodeid":{"nested":1}})",   // nested object
           R"({"op":"test.start","items":[1,2]})",            // an array not of strings
           R"({"op":"test.start","id":1})",                   // a request
           R"({"event":"x","op":"y"})",                       // a push
           R"({"ok":true,"op":"y"})",                         // a reply
           R"({"nodeid":"x"})",                               // no op
           R"({"op":""})",                                    // empty op
           R"({"op":7})",                                     // op not a string
           R"({"op":"test.start",)",                          // torn
           R"({"op":"test.start"} {"op":"test.start"})",      // two documents
           R"("op")", "7", "null", "", "[]",                  // not an object
       })
    CHECK_FALSE(parse_flat_message(line));
}

// -- h13cpu (issue 13): parse_flat_message's fast path, checked against the tree --

namespace {

/// Whether every member of `object` is a scalar or an array of strings
/// (collection.items' nodeids): what the flat decoders take.
bool flat_values(const nlohmann::json& object) {
  for (const auto& [key, value] : object.items()) {
    if (value.is_object()) return false;
    if (value.is_array())
      for (const auto& item : value)
        if (!item.is_string()) return false;
  }
  return true;
}

/// What the tree parser makes of `line` as a flat message: the members of a
/// notification whose values are all scalars, or nullopt.
std::optional<nlohmann::json> flat_by_tree(std::string_view line) {
  Message m;
  try {
    m = parse_message(line);
  } catch (const Error&) {
    return std::nullopt;
  }
  if (m.kind != Kind::kNotification || !m.body.is_object()) return std::nullopt;
  if (!m.body["op"].is_string() || m.body["op"].get<std::string>().empty()) return std::nullopt;
  if (!flat_values(m.body)) return std::nullopt;
  return m.body;
}

void check_same_as_tree(const std::string& line) {
  INFO(line);
  const auto flat = parse_flat_message(line);
  const auto tree = flat_by_tree(line);
  REQUIRE(flat.has_value() == tree.has_value());
  if (!flat) return;
  CHECK(flat->op == (*tree)["op"].get<std::string>());
  for (const auto& [key, value] : tree->items()) {
    if (key == "op") continue;
    const auto* mine = flat->find(key);
    REQUIRE(mine);
    CHECK(mine->to_json() == value);
    CHECK(mine->to_json().type() == value.type());
  }
}

}  // namespace

TEST_CASE("the fast path decodes what the shims write exactly as the JSON parser does") {
  for (const char* line : {
           R"({"op":"test.start","nodeid":"t.py::test_x[1]"})",
           R"({"op":"test.finish","nodeid":"t.py::test_t[9]","outcome":"passed","phase":"call","duration":1.2345e-05,"message":""})",
           R"({"op":"test.finish","nodeid":"t\"q\\b\/s\b\f\n\r\t","outcome":"failed","duration":0.5,"line":-12,"reruns":0})",
           R"({"op":"test.start","nodeid":"\u00e9\u20ac\ud83d\ude00\u0000x"})",  // escapes, a surrogate pair, NUL
           "{\"op\":\"test.start\",\"nodeid\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",  // raw UTF-8
           " {\t\"op\" : \"x\" ,\r\n\"a\" : true , \"b\":false,\"c\":null,\"d\":0,\"e\":-0,\"f\":1E+2,\"g\":-1.5e-3 } ",
           R"({"op":"x","big":18446744073709551615,"neg":-9223372036854775808})",
           R"({"op":"x","over":18446744073709551616,"under":-9223372036854775809,"tiny":1e-400})",  // doubles
           R"({"op":"x","op":"y"})", R"({"op":5,"op":"y"})", R"({"op":"y","op":5})",
           R"({"\u006fp":"escaped key"})",
           // Arrays of strings: collection.items.
           R"({"op":"collection.items","nodeids":["t.py::a","t.py::b[\u00e9]", "c\n" ]})", R"({"op":"x","a":[]})",
           R"({"op":"x","a":[ ],"b":["x"],"a":["y"]})",
           // Refused, each for its own reason.
           R"({"op":"x","id":null})", R"({"op":"x","ok":1})", R"({"op":"x","event":"e"})", R"({"op":""})",
           R"({"op":"x","a":[1]})", R"({"op":"x","a":{}})", R"({"op":"x","a":["b",1]})", R"({"op":"x","a":[["b"]]})",
           R"({"op":"x","a":["b",]})", R"({"op":"x","a":[,"b"]})", R"({"op":"x","a":["b"})", R"({"op":"x","a":["b",{}]})",
           R"({"op":["x"]})", R"({"op":"x","a":[null]})", R"({"op":"x"} )" "x", R"({"op":"x",})",
           R"({"op":"x","a":01})", R"({"op":"x","a":1.})", R"({"op":"x","a":.5})", R"({"op":"x","a":+1})",
           R"({"op":"x","a":1e})", R"({"op":"x","a":-})", R"({"op":"x","a":1e400})", R"({"op":"x","a":tru})",
           R"({"op":"x","a":"\ud800"})", R"({"op":"x","a":"\udc00"})", R"({"op":"x","a":"\ud800\u0041"})",
           R"({"op":"x","a":"\x"})", R"({"op":"x","a":"\u12g4"})", "{\"op\":\"x\",\"a\":\"\t\"}",
           "{\"op\":\"x\",\"a\":\"\xc0\xaf\"}", "{\"op\":\"x\",\"a\":\"\xed\xa0\x80\"}", "{\"op\":\"x\",\"a\":\"\xf4\x90\x80\x80\"}",
           "{\"op\":\"x\",\"a\":\"\xe2\x82\"}", "{\"op\":\"x\",\"a\":\"\xff\"}", "\xef\xbb\xbf{\"op\":\"bom\"}",
           R"({"op":"x","a":"unterminated)", "{", "", "{}", R"({"op"})", R"({"op":})", R"({op:"x"})",
       })
    check_same_as_tree(line);
}

TEST_CASE("the fast path agrees with the JSON parser on mangled records") {
  // Every one-byte change, cut and insertion of a few records, and random
  // lines built from JSON's pieces: accepted or not, the same members.
  const std::vector<std::string> seeds = {
      R"({"op":"test.finish","nodeid":"t.py::t[\u00e9]","outcome":"passed","duration":1.5e-05,"line":-3,"x":true})",
      "{\"op\":\"test.start\",\"nodeid\":\"\xe2\x82\xac\\ud83d\\ude00\",\"n\":null,\"f\":false}",
      R"({"op":"collection.items","nodeids":["t.py::a","b\u00e9",""],"n":1})",
  };
  const std::string bytes = "{}[]:,\"\\/ \t-+.0123456789eEabfnrtuxdDcC\x80\xbf\xc3\xed\xf0\xf4\xff";
  for (const auto& seed : seeds) for_each_mangling(seed, bytes, [](const std::string& line) { check_same_as_tree(line); });
  const std::vector<std::string> pieces = {"{", "}", "\"op\"", "\"a\"", ":", ",", "\"x\"", "\"\\u00e9\"",
                                           "\"\\ud83d\\ude00\"", "1", "-2", "3.5e-1", "true", "null", " ",
                                           "[", "]", "\"\xc3\xa9\"", "\"id\"", "\"\""};
  std::uint32_t state = 12345;
  for (int n = 0; n < 20000; ++n) {
    std::string line = "{\"op\":\"t\"";
    const int count = static_cast<int>(state % 9);
    for (int k = 0; k < count; ++k) {
      state = state * 1664525u + 1013904223u;
      line += pieces[(state >> 8) % pieces.size()];
    }
    state = state * 1664525u + 1013904223u;
    if (state & 1) line += "}";
    check_same_as_tree(line);
  }
}

// -- parse_flat_object: flat records lpd reads back (crashes.jsonl) --

namespace {

/// What the JSON parser makes of `line` as a flat object: an object whose
/// values are scalars or arrays of strings, or nullopt.
std::optional<nlohmann::json> flat_object_by_tree(std::string_view line) {
  auto tree = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (tree.is_discarded() || !tree.is_object() || !flat_values(tree)) return std::nullopt;
  return tree;
}

void check_object_same_as_tree(const std::string& line) {
  INFO(line);
  const auto members = parse_flat_object(line);
  const auto tree = flat_object_by_tree(line);
  REQUIRE(members.has_value() == tree.has_value());
  if (!members) return;
  nlohmann::json mine = nlohmann::json::object();
  for (const auto& [key, value] : *members) mine[key] = value.to_json();  // the last of a name twice, as JSON
  CHECK(mine == *tree);
  for (const auto& [key, value] : tree->items()) CHECK(mine[key].type() == value.type());
}

}  // namespace

TEST_CASE("parse_flat_object reads a flat object as the JSON parser does, op, id and event like any member") {
  for (const char* line : {
           // A crash record as CrashStore writes it (dump with ensure_ascii off: raw UTF-8).
           "{\"attempt\":1,\"crash_id\":7,\"crash_time\":1764662400.25,\"duration\":0.5,\"exit_code\":null,"
           "\"flaky\":false,\"nodeid\":\"t.py::t[\xc3\xa9]\",\"owner_uid\":1000,\"phase\":\"call\",\"pid\":42,"
           "\"reason\":\"killed by SIGSEGV\",\"run_id\":\"r\",\"signal\":11,\"signal_name\":\"SIGSEGV\","
           "\"traceback\":\"Fatal Python error: Segmentation fault\\n\\nCurrent thread 0x1 (most recent call first):\\n"
           "  File \\\"t.py\\\", line 3 in t\\n\\t\\u0001\",\"where\":\"test\",\"worker_id\":\"gw0\"}",
           R"({"op":"x","id":1,"event":"e","ok":true})", R"({"op":5})", R"({"op":""})", R"({})", R"({"a":"b","a":2})",
           R"({"a":["x","y"],"b":[]})", R"({"a":[1]})", R"({"a":{}})", R"({"a":[["b"]]})", R"([])", R"("x")", "7",
           R"({"a":1,})", R"({"a":"\ud800"})", R"({"a":1e400})", R"({"a":-0,"b":18446744073709551616})", "", "{",
       })
    check_object_same_as_tree(line);
}

TEST_CASE("parse_flat_object agrees with the JSON parser on mangled records") {
  const std::vector<std::string> seeds = {
      R"({"crash_id":3,"nodeid":"t.py::t[\u00e9]","signal":null,"flaky":true,"traceback":"a\nb","duration":1.5e-05})",
      R"({"op":"x","id":"1","nodeids":["a","b"],"n":-3})",
  };
  const std::string bytes = "{}[]:,\"\\/ \t-+.0123456789eEabfnrtuxdDcC\x80\xbf\xc3\xed\xf0\xf4\xff";
  for (const auto& seed : seeds)
    for_each_mangling(seed, bytes, [](const std::string& line) { check_object_same_as_tree(line); });
}

// h13fixA (issue 13): no line over the limit ever leaves lpd; the peer
// hears what it lost instead.
TEST_CASE("a line over the limit becomes a too_large error naming it") {
  using lpd::protocol::kMaxLineBytes;
  using lpd::protocol::within_line_limit;
  const std::string small = encode_push("run.done", {{"x", 1}});
  CHECK(within_line_limit(small) == small);
  const std::string at_limit = std::string(kMaxLineBytes, 'x') + "\n";  // exactly the limit, newline aside
  CHECK(within_line_limit(at_limit) == at_limit);
  const std::string big_text(kMaxLineBytes, 'y');
  const auto reply = nlohmann::json::parse(within_line_limit(encode_reply_ok(7, {{"junit", big_text}})));
  CHECK(reply["id"] == 7);
  CHECK(reply["ok"] == false);
  CHECK(reply["error"]["code"] == "too_large");
  const auto push = nlohmann::json::parse(within_line_limit(encode_push("run.done", {{"junit", big_text}})));
  CHECK(push["id"].is_null());
  CHECK(push["error"]["code"] == "too_large");
  CHECK(push["error"]["message"].get<std::string>().find("run.done push") != std::string::npos);
  CHECK(within_line_limit(std::string(kMaxLineBytes + 5, '{')).size() < 1024);  // not JSON at all: still bounded
}
