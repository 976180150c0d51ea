// Fuzz target: one crash record (a line of crashes.jsonl, or a --crash-log
// line), as JobService reads them back: a parsed JSON value, then
// Crash::from_json. Contracts checked:
//   - no memory error or undefined behaviour (ASan, UBSan);
//   - Crash::from_json fails, if at all, with nlohmann::json::exception (a
//     mistyped field; the caller must skip the record);
//   - after one from_json, to_json -> from_json -> to_json is exact;
//   - the signal helpers accept any reason or traceback text.

#include <cstddef>
#include <cstdint>

#include "daemon/crashes/crash.h"
#include "fuzz/state_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using lpd::daemon::Crash;
  const auto stored = lpd::fuzz::read_back("crash.json", data, size);
  if (!stored) return 0;
  try {
    const Crash crash = lpd::fuzz::round_trip<Crash>("crash", *stored);
    (void)lpd::daemon::signal_from_traceback(crash.traceback);
    if (crash.signal) (void)lpd::daemon::signal_name(*crash.signal);
  } catch (const nlohmann::json::exception&) {
  }
  return 0;
}
