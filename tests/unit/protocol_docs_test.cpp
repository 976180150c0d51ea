// h18docs (issue 18): protocol/README.md documents every operation the
// daemon serves and every event it pushes, each with an example line. The
// operations come from the daemon's own table; the events from a fixed list
// that a scan of the daemon's sources keeps complete. Adding either without
// its documentation fails here.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/daemon.h"
#include "daemon/operation_table.h"

using namespace lpd::daemon;

namespace {

std::string read_doc(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> text_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

const std::filesystem::path kSourceDir = LPD_SOURCE_DIR;

/// Every event type lpd publishes on its bus (events.subscribe,
/// events.list) and every push of a stream (run.attach, proc.logs).
const std::set<std::string> kEventTypes = {
    // the event bus
    "run.started", "run.ended", "run.output_dropped", "job", "crash", "test.start", "test.finish",
    "pause.created", "pause.resumed", "pause.timed_out", "pause.stale", "pause.command_rejected",
    "process.starting", "process.ready", "process.exited", "process.killed", "process.lost", "process.holders",
    "process.log_dropped",
    // streams
    "run.output", "run.done", "proc.log", "proc.log_end"};

/// The event types named in the daemon's sources where an event is made:
/// the first string literal of publish(, publish_text(, encode_push( and
/// settle( (a pause's end), and both arms of a `cond ? "a" : "b"` there.
std::set<std::string> event_types_in_sources() {
  static const std::regex call(R"re(\b(publish|publish_text|encode_push|settle)\([^"]*"([a-z_]+(\.[a-z_]+)?)")re");
  static const std::regex arms(R"re(\?\s*"([a-z_]+\.[a-z_]+)"\s*:\s*"([a-z_]+\.[a-z_]+)")re");
  std::set<std::string> found;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(kSourceDir / "daemon")) {
    if (entry.path().extension() != ".cpp") continue;
    for (const std::string& line : text_lines(read_doc(entry.path()))) {
      std::smatch m;
      if (!std::regex_search(line, m, call)) continue;
      found.insert(m[2]);
      if (std::regex_search(line, m, arms)) {
        found.insert(m[1]);
        found.insert(m[2]);
      }
    }
  }
  return found;
}

struct Docs {
  std::string text = read_doc(kSourceDir / "protocol" / "README.md");
  std::vector<std::string> lines = text_lines(text);

  /// A paragraph of its own: "**op**: ..." or "**op** (...)".
  bool describes(const std::string& name) const { return text.find("**" + name + "**") != std::string::npos; }

  /// An example line sent to lpd: `> {"id":N,"op":"name",...}` (a request)
  /// or `> {"op":"name",...}` (a notification).
  bool shows_request(const std::string& name) const {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& line) {
      return line.rfind("> {", 0) == 0 && line.find("\"op\":\"" + name + "\"") != std::string::npos;
    });
  }

  /// An example line lpd pushes: `< {... "event":"type" ...}`.
  bool shows_push(const std::string& type) const {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& line) {
      return line.rfind("< {", 0) == 0 && line.find("\"event\":\"" + type + "\"") != std::string::npos;
    });
  }
};

}  // namespace

TEST_CASE("protocol/README.md describes every operation of the daemon's table, with an example request",
          "[docs]") {
  char dir[] = "/tmp/lpd-docs-XXXXXX";
  const std::string root = ::mkdtemp(dir);
  {
    DaemonConfig config;
    config.socket_path = root + "/lpd.sock";
    config.state_dir = root + "/state";
    Daemon daemon(config);
    const Docs docs;
    REQUIRE(daemon.dispatcher().operations().size() > 30);
    for (const auto& op : daemon.dispatcher().operations()) {
      const std::string name(op.name);
      INFO("operation " << name << ": add a \"**" << name << "**\" paragraph and an example line starting "
                        << "> {\"id\":N,\"op\":\"" << name << "\" to protocol/README.md");
      CHECK(docs.describes(name));
      CHECK(docs.shows_request(name));
    }
  }
  std::filesystem::remove_all(root);
}

TEST_CASE("protocol/README.md shows every event type lpd publishes as a pushed line", "[docs]") {
  const Docs docs;
  for (const std::string& type : kEventTypes) {
    INFO("event " << type << ": add an example pushed line, `< {\"data\":{...},\"event\":\"" << type
                  << "\"}`, to protocol/README.md");
    CHECK(docs.shows_push(type));
  }
}

TEST_CASE("protocol/README.md's example lines are JSON, except where they elide with ...", "[docs]") {
  const Docs docs;
  int checked = 0;
  for (const std::string& line : docs.lines) {
    if (line.rfind("> {", 0) != 0 && line.rfind("< {", 0) != 0) continue;
    if (line.find("...") != std::string::npos) continue;
    // A note may follow the object: "(as uid 1001; ...)", "+ SCM_RIGHTS [memfd]".
    const std::string object = line.substr(2, line.rfind('}') - 1);
    INFO(line);
    CHECK(nlohmann::json::accept(object));
    ++checked;
  }
  CHECK(checked > 40);
}

TEST_CASE("the list of event types above knows every event the daemon's sources make", "[docs]") {
  const std::set<std::string> found = event_types_in_sources();
  // The scan itself still works: it sees events made each way.
  for (const char* sure : {"pause.created", "pause.stale", "process.killed", "process.exited", "job", "run.done"}) {
    INFO("the source scan no longer finds " << sure);
    CHECK(found.count(sure) == 1);
  }
  for (const std::string& type : found) {
    INFO("event " << type << " is made in daemon/ but missing from kEventTypes (and so maybe from the docs)");
    CHECK(kEventTypes.count(type) == 1);
  }
}
