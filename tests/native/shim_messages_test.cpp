// The native shim's encoders against protocol/examples/shim_messages.json,
// the file the Python shim is checked against too
// (tests/e2e/test_shim_protocol_examples.py).
#include <fstream>
#include <set>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "shim/native/src/crash_line.h"
#include "shim/native/src/messages.h"

using nlohmann::json;
namespace messages = lpd::shim::messages;

namespace {

json load_examples() {
  std::ifstream in(LPD_SOURCE_DIR "/protocol/examples/shim_messages.json");
  REQUIRE(in.good());
  return json::parse(in);
}

/// Builds with the native encoder the message `example` shows, from its own values.
json build_like(const json& e) {
  const std::string op = e.at("op");
  if (op == "hello") return json::parse(messages::hello(e["id"], e["pid"], e["client"].get<std::string>()));
  if (op == "run.register")
    return json::parse(messages::run_register(e["id"], e.value("run_id", ""), e.value("worker_id", ""),
                                              e["argv"].get<std::vector<std::string>>(), e["cwd"].get<std::string>(),
                                              e["hostname"].get<std::string>()));
  if (op == "run.end") return json::parse(messages::run_end(e["id"]));
  if (op == "test.start") {
    // The native shim also says the phase its tests start in ("call": its
    // API has no phases), which pytest's shim leaves to its default; the
    // rest is the shared example.
    json m = json::parse(messages::test_start(e["nodeid"].get<std::string>()));
    REQUIRE(m.value("phase", "") == "call");
    m.erase("phase");
    return m;
  }
  if (op == "test.finish")
    return json::parse(messages::test_finish(e["nodeid"].get<std::string>(), e["outcome"].get<std::string>(),
                                             e["duration"], e["message"].get<std::string>()));
  if (op == "crash.notice") {
    // The crash handler's own formatting, not the json encoder.
    char escaped[512];
    const std::size_t n = lpd::shim::json_escape_into(e["nodeid"].get<std::string>(), escaped, sizeof(escaped));
    char line[1024];
    const std::size_t len = lpd::shim::format_crash_line(e["signal"], escaped, n, line, sizeof(line));
    REQUIRE(len > 0);
    return json::parse(std::string_view(line, len));
  }
  if (op == "pause.request") {
    messages::PauseRequest r{e["run_id"], e["kind"], e["nodeid"], e["task"], e["original_failure"],
                             e["timeout"], e["pause_id"], e["worker_id"], e["hostname"], e["cwd"]};
    return json::parse(messages::pause_request(e["id"], r));
  }
  FAIL("no native encoder for op " << op);
  return {};
}

/// Same keys, and the same JSON type for each value (an int is not a float).
void require_same_shape(const json& a, const json& b) {
  REQUIRE(a.type() == b.type());
  if (a.is_object()) {
    REQUIRE(a.size() == b.size());
    for (const auto& [key, value] : a.items()) {
      INFO("key " << key);
      REQUIRE(b.contains(key));
      require_same_shape(value, b[key]);
    }
  }
}

}  // namespace

TEST_CASE("every example message is what the native shim encodes", "[shim][protocol]") {
  const json examples = load_examples();
  REQUIRE(examples.is_array());
  std::set<std::string> ops;
  for (const auto& example : examples) {
    INFO(example.dump());
    const json built = build_like(example);
    require_same_shape(built, example);
    CHECK(built == example);
    ops.insert(example["op"].get<std::string>() +
               (example.contains("kind") ? ":" + example["kind"].get<std::string>() : ""));
  }
  CHECK(ops == std::set<std::string>{"hello", "run.register", "test.start", "test.finish", "crash.notice",
                                     "pause.request:checkpoint", "pause.request:failure", "run.end"});
}

TEST_CASE("encoded lines are single lines ending in a newline", "[shim][protocol]") {
  const std::string line = messages::test_finish("A.B", "failed", 0.5, "two\nlines");
  REQUIRE(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
}

TEST_CASE("run.register leaves out an empty run id and worker id", "[shim][protocol]") {
  const json j = json::parse(messages::run_register(2, "", "", {"a"}, "/x", "h"));
  CHECK_FALSE(j.contains("run_id"));
  CHECK_FALSE(j.contains("worker_id"));
}

TEST_CASE("pause ids are 16 lower-case hex characters and differ", "[shim]") {
  const std::string a = messages::new_pause_id();
  const std::string b = messages::new_pause_id();
  CHECK(a.size() == 16);
  CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(a != b);
}
