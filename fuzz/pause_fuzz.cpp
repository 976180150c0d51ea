// Fuzz target: runs/<id>/pauses/<pause>.json, read back as
// PauseService::restore does (StateStore::read_json, then Pause::from_json).
// Contracts checked:
//   - no memory error or undefined behaviour (ASan, UBSan);
//   - Pause::from_json never throws (a damaged field reads as its default);
//   - after one from_json, to_json -> from_json -> to_json is exact, and the
//     reply to a waiting shim (outcome_json) can be built.

#include <cstddef>
#include <cstdint>

#include "daemon/pauses/pause.h"
#include "fuzz/state_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using lpd::daemon::Pause;
  const auto stored = lpd::fuzz::read_back("runs/r/pauses/p.json", data, size);
  if (!stored) return 0;
  const Pause pause = lpd::fuzz::round_trip<Pause>("pause", *stored);
  (void)pause.outcome_json();
  (void)pause.deadline();
  return 0;
}
