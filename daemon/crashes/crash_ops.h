#pragma once

#include "daemon/core/operation.h"

namespace lpd::daemon {

class CrashStore;

/// crash.list {run_id?, after? (a crash_id), limit? (default 100, at most
/// 1000)}: one page of crash records, oldest first (CrashStore::page), each
/// as the caller may see it (Call::view): {"crashes", "next"}. bad_request
/// for an after below 0 or a limit out of range.
json handle_crash_list(CrashStore& crashes, Call& call);

}  // namespace lpd::daemon
