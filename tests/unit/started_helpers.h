#pragma once

#include <sys/types.h>

#include <string>

#include "daemon/processes/process_registry.h"

/// A registry of helper records started for the test, each alive, keyed by
/// (owner, scope, name): the ground for name resolution and owner rules.
struct StartedHelpers {
  lpd::daemon::ProcessRegistry registry{[](pid_t, std::uint64_t) { return lpd::daemon::Liveness::kAlive; }};
  /// Begins the record of `name` that uid `owner` started in `scope` (pid 100); returns its key.
  lpd::daemon::ProcessKey add(uid_t owner, const std::string& scope, const std::string& name) {
    lpd::daemon::SupervisedProcess record;
    record.owner = owner;
    record.scope = scope;
    record.name = name;
    record.pid = 100;
    record.start_time = 1;
    registry.begin(record);
    return record.key();
  }
};
