// Fuzz target: runs/<id>/run.json, read back as RunService::restore does
// (StateStore::read_json, then Run::from_json). Contracts checked:
//   - no memory error or undefined behaviour (ASan, UBSan);
//   - Run::from_json fails, if at all, with nlohmann::json::exception (a
//     mistyped field; the caller must skip the record);
//   - after one from_json, to_json -> from_json -> to_json is exact.

#include <cstddef>
#include <cstdint>

#include "daemon/runs/run.h"
#include "fuzz/state_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using lpd::daemon::Run;
  const auto stored = lpd::fuzz::read_back("runs/r/run.json", data, size);
  if (!stored) return 0;
  try {
    (void)lpd::fuzz::round_trip<Run>("run", *stored);
  } catch (const nlohmann::json::exception&) {
  }
  return 0;
}
