// Fuzz target: procs/<name>.json, read back as ProcessService::restore does
// (StateStore::read_json, then process_from_json). Contracts checked:
//   - no memory error or undefined behaviour (ASan, UBSan);
//   - process_from_json never throws: a bad record is nullopt;
//   - a record it accepts has a valid name, and after one read
//     process_to_json -> process_from_json -> process_to_json is exact.

#include <cstddef>
#include <cstdint>

#include "daemon/processes/process_name.h"
#include "daemon/processes/process_record_json.h"
#include "fuzz/state_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lpd::daemon;
  const auto stored = lpd::fuzz::read_back("procs/p.json", data, size);
  if (!stored) return 0;
  const auto record = process_from_json(*stored);
  if (!record) return 0;
  if (!is_valid_process_name(record->name)) lpd::fuzz::violated("process_record", "a record with a bad name was read");
  constexpr double kNow = 1.8e9;
  const nlohmann::json once = process_to_json(*record, kNow);
  const auto again = process_from_json(once);
  if (!again) lpd::fuzz::violated("process_record", "lpd cannot read back what it wrote");
  if (process_to_json(*again, kNow) != once) lpd::fuzz::violated("process_record", "to_json/from_json is not a round trip");
  return 0;
}
