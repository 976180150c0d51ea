// Fuzz target: one test result (a test.finish line of a run's events.jsonl),
// as JobService reads them back: a parsed JSON value, then
// TestResult::from_json. Contracts checked:
//   - no memory error or undefined behaviour (ASan, UBSan);
//   - TestResult::from_json fails, if at all, with nlohmann::json::exception
//     (a mistyped field; the caller must skip the record);
//   - after one from_json, to_json -> from_json -> to_json is exact.

#include <cstddef>
#include <cstdint>

#include "daemon/reports/test_result.h"
#include "fuzz/state_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using lpd::daemon::TestResult;
  const auto stored = lpd::fuzz::read_back("result.json", data, size);
  if (!stored) return 0;
  try {
    (void)lpd::fuzz::round_trip<TestResult>("test_result", *stored);
  } catch (const nlohmann::json::exception&) {
  }
  return 0;
}
