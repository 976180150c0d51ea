// Fuzz target: runs/<id>/job.json, read back as JobService::restore does
// (StateStore::read_json, then Job::from_json). Contracts checked:
//   - no memory error or undefined behaviour (ASan, UBSan);
//   - Job::from_json fails, if at all, with nlohmann::json::exception (a
//     mistyped field; the caller must skip the record);
//   - what lpd writes it reads back unchanged: after one from_json, the
//     to_json -> from_json -> to_json round trip is exact;
//   - the payload and next attempt's command line can be built from it.

#include <cstddef>
#include <cstdint>

#include "daemon/jobs/job.h"
#include "fuzz/state_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using lpd::daemon::Job;
  const auto stored = lpd::fuzz::read_back("runs/r/job.json", data, size);
  if (!stored) return 0;
  try {
    const Job job = lpd::fuzz::round_trip<Job>("job", *stored);
    (void)job.payload("r");
    (void)job.attempt_argv();
  } catch (const nlohmann::json::exception&) {
  }
  return 0;
}
