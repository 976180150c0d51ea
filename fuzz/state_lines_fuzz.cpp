// Fuzz target: a journal (crashes.jsonl, a run's events.jsonl) read back by
// StateStore::read_lines, then each line handed to the parser that reads
// it at restore: test.finish lines to TestResult::from_json, the others to
// Crash::from_json. Contracts checked:
//   - no memory error or undefined behaviour (ASan, UBSan);
//   - read_lines returns at most one value per line and skips the rest;
//   - the record parsers fail, if at all, with nlohmann::json::exception.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/crashes/crash.h"
#include "daemon/reports/test_result.h"
#include "fuzz/state_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lpd::daemon;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto& dir = lpd::fuzz::state_dir();
  dir.put("runs/r/events.jsonl", bytes);
  const auto lines = dir.store().read_lines("runs/r/events.jsonl");
  const auto newlines = static_cast<std::size_t>(std::count(bytes.begin(), bytes.end(), '\n'));
  if (lines.size() > newlines + 1) lpd::fuzz::violated("state_lines", "more values than lines");
  for (const auto& line : lines) {
    try {
      if (line.is_object() && line.value("event", "") == "test.finish")
        (void)TestResult::from_json(line).to_json();
      else
        (void)Crash::from_json(line).to_json();
    } catch (const nlohmann::json::exception&) {
    }
  }
  return 0;
}
