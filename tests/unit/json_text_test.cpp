// Text written without a JSON tree (protocol/json_text.h, TestResult::
// to_json_text, EventBus::publish_text) must read back as what the tree
// would have given: every consumer of events and journals parses it.
#include <catch2/catch.hpp>

#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/core/event_bus.h"
#include "daemon/history/event_line.h"
#include "daemon/reports/test_result.h"
#include "protocol/json_text.h"
#include "protocol/message.h"
#include "daemon/jobs/output_push.h"

using lpd::daemon::Event;
using lpd::daemon::EventBus;
using lpd::daemon::TestResult;
using nlohmann::json;

namespace {
json parsed(const std::string& text) { return json::parse(text); }
std::string string_text(std::string_view s) {
  std::string out;
  lpd::protocol::append_json_string(out, s);
  return out;
}
std::string number_text(double v) {
  std::string out;
  lpd::protocol::append_json_number(out, v);
  return out;
}
}  // namespace

TEST_CASE("strings are escaped as the JSON library escapes them, bad UTF-8 replaced") {
  for (std::string s : {std::string(""), std::string("t.py::test_x[1-2]"), std::string("quote \" and \\ back"),
                        std::string("tab\there\nnewline"), std::string("ctl \x01\x1f"), std::string("prêt ✓"),
                        std::string("bad \xff\xfe byte"), std::string("nul \0 inside", 13)}) {
    const std::string ours = string_text(s);
    CHECK(ours == json(s).dump(-1, ' ', false, json::error_handler_t::replace));
    CHECK(parsed(ours).is_string());
  }
}

// h13cpu (issue 13): ASCII is escaped without the library, byte for byte as it would.
TEST_CASE("every ASCII byte, alone and among others, is written as the JSON library writes it") {
  for (int c = 0; c < 0x80; ++c) {
    for (std::string s : {std::string(1, static_cast<char>(c)), "a" + std::string(1, static_cast<char>(c)) + "b\n",
                          std::string(3, static_cast<char>(c)) + "\xc3\xa9"}) {
      INFO(c);
      CHECK(string_text(s) == json(s).dump(-1, ' ', false, json::error_handler_t::replace));
    }
  }
}

// h13cpu (issue 13): the scan for bytes a JSON string must escape reads
// eight at a time; it must find the first one wherever it is.
TEST_CASE("plain_json_prefix stops at the first byte a JSON string cannot hold as it is") {
  const auto reference = [](std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
      ++i;
    }
    return i;
  };
  for (int c = 0; c < 256; ++c)
    for (std::size_t at = 0; at < 20; ++at)
      for (std::size_t length : {at + 1, at + 3, at + 9, std::size_t{40}}) {
        std::string s(std::max(length, at + 1), 'a');
        s[at] = static_cast<char>(c);
        INFO(c << " at " << at << " of " << s.size());
        CHECK(lpd::protocol::plain_json_prefix(s) == reference(s));
      }
  std::uint32_t state = 7;
  const std::string bytes = "az09 ~\x7f\"\\\x00\x1f\x20\x80\xff\xc3";
  for (int n = 0; n < 20000; ++n) {
    std::string s;
    state = state * 1664525u + 1013904223u;
    const std::size_t length = (state >> 8) % 50;
    for (std::size_t k = 0; k < length; ++k) {
      state = state * 1664525u + 1013904223u;
      // Mostly plain letters, so that the special byte falls anywhere.
      s += (state >> 24) % 8 ? 'x' : bytes[(state >> 8) % bytes.size()];
    }
    INFO(json(s).dump(-1, ' ', false, json::error_handler_t::replace));
    CHECK(lpd::protocol::plain_json_prefix(s) == reference(s));
  }
}

// h13cpu: an event's time (whole microseconds) is written in fixed notation;
// it must still read back as exactly the same double.
TEST_CASE("whole microseconds are written in fixed notation and read back as the same double") {
  CHECK(number_text(1764470000.123456) == "1764470000.123456");
  CHECK(number_text(1764470000.1) == "1764470000.1");
  CHECK(number_text(2.0) == "2.0");
  CHECK(number_text(0.000001) == "0.000001");
  CHECK(number_text(-0.0) == "-0.0");  // the sign is kept: not the fixed path
  std::uint64_t state = 99;
  for (int n = 0; n < 100000; ++n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const auto micros = static_cast<std::int64_t>((state >> 11) % 9'000'000'000'000'000ULL);
    const double v = static_cast<double>(micros) / 1e6;
    const std::string text = number_text(v);
    INFO(text << " for " << micros);
    const auto back = parsed(text);
    REQUIRE(back.is_number_float());
    CHECK(back.get<double>() == v);
  }
}

TEST_CASE("numbers read back as the same double, as floats; non-finite as null") {
  for (double v : {0.0, -0.0, 1.0, 2.5, 0.0001, 1e-7, 123456789.125, 1764470000.123456, 1e21, -3.0,
                   std::numeric_limits<double>::min(), std::numeric_limits<double>::max()}) {
    const auto back = parsed(number_text(v));
    INFO(number_text(v));
    REQUIRE(back.is_number_float());
    CHECK(back.get<double>() == v);
  }
  CHECK(number_text(std::numeric_limits<double>::infinity()) == "null");
  CHECK(number_text(std::numeric_limits<double>::quiet_NaN()) == "null");
}

TEST_CASE("a test result's text reads back equal to its tree, field by field") {
  std::vector<TestResult> results(5);
  results[0].nodeid = "t.py::test_pass";
  results[0].outcome = "passed";
  results[0].phase = "call";
  results[0].duration = 0.000123;
  results[0].worker_id = "gw0";
  results[1] = results[0];
  results[1].outcome = "failed";
  results[1].message = "assert 1 == 2";
  results[1].longrepr = "def test():\n>   assert 1 == 2\nE   assert 1 == 2\n\nt.py:3: AssertionError";
  results[1].file = "t.py";
  results[1].line = 2;
  results[1].classname = "t";
  results[1].name = "test_pass";
  results[1].reruns = 2;
  results[1].failure_reason = "timed out in a pause";
  results[1].system_out = "[db] ready \xff\n";
  results[1].system_err = "warning: <stderr> \x01\n";
  results[1].attempt = 3;
  results[2] = results[0];
  results[2].outcome = "skipped";
  results[2].xfail_reason = "";  // an xfail without reason: the key, empty
  results[3] = results[2];
  results[3].xfail_reason = "known \"bug\"";
  results[3].line = 0;
  results[4].nodeid = "odd \x01 nodeid \xc3";  // control and truncated UTF-8
  results[4].duration = 2.0;
  for (const auto& r : results) {
    const std::string text = r.to_json_text();
    INFO(text);
    const json tree = parsed(r.to_json().dump(-1, ' ', false, json::error_handler_t::replace));
    CHECK(parsed(text) == tree);
    CHECK(TestResult::from_json(parsed(text)).to_json() == TestResult::from_json(tree).to_json());
  }
}

TEST_CASE("an event published as text is parsed only when asked, and journals it as the tree would") {
  EventBus bus;
  std::vector<std::string> run_lines, log_lines;
  std::vector<bool> parsed_on_delivery;
  bus.subscribe([&](const Event& e) {
    run_lines.push_back(lpd::daemon::encode_run_journal_line(e));
    log_lines.push_back(lpd::daemon::encode_event_line(e));
  });
  TestResult r;
  r.nodeid = "t.py::test_a";
  r.outcome = "passed";
  r.phase = "call";
  r.duration = 0.5;
  const Event& text_event = bus.publish_text("test.finish", r.to_json_text(), "run-1", 1000);
  const std::uint64_t text_seq = text_event.seq;
  CHECK(text_event.data_is_plain_object());
  CHECK(text_event.data() == r.to_json());
  const Event& tree_event = bus.publish("test.finish", r.to_json(), "run-1", 1000);
  REQUIRE(run_lines.size() == 2);
  // The same facts, whichever way they were published (seq and time differ).
  auto without_envelope = [](json j) {
    j.erase("seq");
    j.erase("time");
    if (j.contains("data")) {
      j["data"].erase("seq");
      j["data"].erase("time");
    }
    return j;
  };
  CHECK(without_envelope(parsed(run_lines[0])) == without_envelope(parsed(run_lines[1])));
  CHECK(without_envelope(parsed(log_lines[0])) == without_envelope(parsed(log_lines[1])));
  CHECK(parsed(run_lines[0])["seq"] == text_seq);
  // A subscriber's push is built from the parsed data.
  CHECK(bus.find(text_seq)->push_data()["nodeid"] == "t.py::test_a");
  CHECK(tree_event.push_data()["outcome"] == "passed");
}

// h13cpu (issue 13): run.output pushes are written without a tree, as the tree would be.
TEST_CASE("a run.output push reads byte for byte as encode_push writes it") {
  for (const auto& [note, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"", ""}, {"", "....                [ 40%]\n"}, {"", "tab\t\"q\" \\ \x01 \x7f"},
           {"[lpd: 12 bytes dropped]\n", "rest\n"}, {"", "pr\xc3\xaat \xe2\x9c\x93"},
           {"", "bad \xff\xfe \xc3"}, {"note \xc3", "\xa9 split across"}, {"", std::string("nul \0 in", 9)}}) {
    for (const std::string stream : {"stdout", "stderr"}) {
      for (const std::optional<std::uint64_t> dropped : {std::optional<std::uint64_t>(), std::optional<std::uint64_t>(4096)}) {
        INFO(bytes);
        json data{{"data", note + bytes}, {"stream", stream}, {"offset", 123456789012ULL}};
        if (dropped) data["dropped_bytes"] = *dropped;
        CHECK(lpd::daemon::encode_output_push(note, bytes, stream, 123456789012ULL, dropped) ==
              lpd::protocol::encode_push("run.output", data));
      }
    }
  }
}
