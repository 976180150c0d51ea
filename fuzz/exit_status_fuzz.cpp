// Fuzz target: runs/<id>/exit.json, the status lpd-monitor leaves. lpd reads
// it with read_untrusted_file (64 KiB bound) and JobService's private
// read_exit_status / attempt_ended; those are not callable from outside, so
// this target applies the same JSON steps they do (parse without
// exceptions, object check, then the "state", "signal" and "exit_code"
// fields), and feeds the result to final_returncode.
// Contracts checked: no memory error or undefined behaviour (ASan, UBSan);
// nlohmann::json::exception is tolerated here (see fuzz/README.md: a
// non-string "state" makes attempt_ended throw).

#include <cstddef>
#include <cstdint>
#include <optional>

#include "daemon/jobs/job.h"
#include "daemon/core/untrusted_file.h"
#include "fuzz/state_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using nlohmann::json;
  const auto& dir = lpd::fuzz::state_dir();
  dir.put("runs/r/exit.json", std::string_view(reinterpret_cast<const char*>(data), size));
  const auto text = lpd::daemon::read_untrusted_file(dir.store().path("runs/r/exit.json"), 64 * 1024);
  if (!text) return 0;
  // Not const, as in JobService: operator[] on a const json with a missing
  // key reads past the map (nlohmann asserts it only in debug builds).
  json status = json::parse(*text, nullptr, false);
  if (status.is_discarded() || !status.is_object()) return 0;
  std::optional<int> exit_code, signal;
  try {
    if (status.value("state", "") == "exited") {
      if (status["signal"].is_number_integer()) signal = status["signal"].get<int>();
      if (status["exit_code"].is_number_integer()) exit_code = status["exit_code"].get<int>();
    }
  } catch (const json::exception&) {
    return 0;
  }
  (void)lpd::daemon::final_returncode(exit_code, signal, false);
  (void)lpd::daemon::final_returncode(exit_code, signal, true);
  return 0;
}
