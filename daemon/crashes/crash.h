#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include "protocol/signal_names.h"

namespace lpd::daemon {

/// Crash is one test process that died abnormally, pinned on the test that
/// was running. Field names include pytest-abort's crash-log fields
/// (nodeid, crash_time, duration, reason) so its tools read crashes.jsonl.
struct Crash {
  /// Stable identity across restarts: CrashStore gives 1, 2, 3 ... in the
  /// order records are made (0: not stored yet). crash.list pages by it.
  std::uint64_t crash_id = 0;
  std::string run_id;
  std::string nodeid;     // empty when no test was running
  std::string where;      // "test", "collection" (before any test) or "session" (between/after tests)
  std::string phase;      // the test phase when known ("setup", "call", "teardown")
  std::string worker_id;
  pid_t pid = 0;
  std::optional<int> signal;
  std::optional<int> exit_code;
  std::string reason;
  std::string traceback;
  double crash_time = 0;
  double duration = 0;  // seconds the test had run
  int attempt = 1;      // which run of the command (retries count up)
  uid_t owner = static_cast<uid_t>(-1);
  /// The test passed when run again (a flaky crash); see CrashStore::mark_flaky.
  bool flaky = false;

  nlohmann::json to_json() const;
  static Crash from_json(const nlohmann::json& j);
};

/// "SIGSEGV" for 11, "SIG34" for an unnamed one: crash reasons and
/// records name signals as lpctl does (protocol/signal_names.h).
using protocol::signal_name;
/// Python's faulthandler names the fatal signal in its first line
/// ("Fatal Python error: Segmentation fault"); returns it when present.
std::optional<int> signal_from_traceback(std::string_view text);

/// How the reason of a crash pinned on no test because lpd was away ends
/// (unattributed_command_crash: "killed by SIGSEGV" and this).
inline constexpr std::string_view kWhileLpdAway = " while lpd was restarting: which test it was running is not known";

/// True for such a crash (also read back from the crash journal): the
/// process died while lpd was away, and the results it had not sent by then
/// died with it, so a test without a result may have run.
bool results_lost_with(const Crash& crash);

}  // namespace lpd::daemon
