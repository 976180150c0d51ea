// h14fixB: records cut for a list (proc.list, proc.kill_all), and
// proc.list's order of pages (issue 14, attack finding 2).
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "daemon/processes/process_list_view.h"
#include "daemon/processes/process_registry.h"

using namespace lpd::daemon;
using nlohmann::json;

TEST_CASE("list_view cuts a long argv to its budget and says so") {
  const std::string big(120000, 'a');
  const json record = {{"name", "big"}, {"argv", {"bash", "-c", "exec sleep 300", big, "tail"}}};
  const json cut = list_view(record);
  std::size_t bytes = 0;
  for (const auto& arg : cut["argv"]) bytes += arg.get<std::string>().size();
  CHECK(bytes == kListArgvBytes);
  CHECK(cut["argv_truncated"] == true);
  CHECK(cut["argv_count"] == 5);
  CHECK(cut["argv"][0] == "bash");
  CHECK(cut["argv"].size() == 4);  // "tail" is past the budget
  CHECK(cut["name"] == "big");
}

TEST_CASE("list_view leaves a short record as it is") {
  const json record = {{"name", "db"}, {"argv", {"sleep", "1"}}, {"pattern", "ready"}, {"logs", {"a", "b"}}};
  CHECK(list_view(record) == record);
  // Redacted records (another user's) have no argv at all.
  const json redacted = {{"name", "db"}, {"redacted", true}};
  CHECK(list_view(redacted) == redacted);
}

TEST_CASE("list_view cuts free texts and long lists, never inside a UTF-8 sequence") {
  std::string line;
  while (line.size() < 5000) line += "pr\xc3\xaat ";  // "prêt "
  json left = json::array();
  for (int i = 0; i < 50; ++i) left.push_back({{"pid", 1000 + i}, {"argv", line}});
  const json cut = list_view({{"ready_line", line}, {"pattern", line}, {"left_running", left}});
  const auto ready = cut["ready_line"].get<std::string>();
  CHECK(ready.size() <= kListTextBytes);
  CHECK(ready.size() >= kListTextBytes - 3);
  CHECK(cut["ready_line_truncated"] == true);
  CHECK(cut["pattern_truncated"] == true);
  CHECK(cut["left_running"].size() == kListEntries);
  CHECK(cut["left_running_count"] == 50);
  CHECK(cut["left_running"][0]["argv"].get<std::string>().size() <= kListTextBytes);
  // Valid UTF-8 still: dumping with the strict handler does not throw.
  CHECK_NOTHROW(cut.dump());
}

TEST_CASE("cut_utf8 backs off to a character boundary") {
  const std::string text = "a\xc3\xa9";  // "aé": 3 bytes
  CHECK(cut_utf8(text, 2) == "a");
  CHECK(cut_utf8(text, 3) == text);
  CHECK(cut_utf8(text, 1) == "a");
}

TEST_CASE("proc.list pages go by generation: start order, a restarted helper moves to the end") {
  ProcessRegistry registry{[](pid_t, std::uint64_t) { return Liveness::kAlive; }};
  auto begin = [&](const std::string& name) {
    SupervisedProcess record;
    record.name = name;
    record.pid = 100;
    return registry.begin(record);
  };
  const auto a = begin("zeta");
  const auto b = begin("alpha");
  const auto c = begin("mid");
  auto names = [](const std::vector<const SupervisedProcess*>& records) {
    std::vector<std::string> out;
    for (const auto* r : records) out.push_back(r->name);
    return out;
  };
  CHECK(names(registry.after_generation(0)) == std::vector<std::string>{"zeta", "alpha", "mid"});
  CHECK(names(registry.after_generation(a)) == std::vector<std::string>{"alpha", "mid"});
  CHECK(names(registry.after_generation(c)).empty());
  begin("zeta");  // started again: a new generation
  CHECK(names(registry.after_generation(b)) == std::vector<std::string>{"mid", "zeta"});
}
