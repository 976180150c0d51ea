#pragma once

#include <boost/asio/io_context.hpp>

#include "daemon/core/event_bus.h"
#include "daemon/core/state_store.h"
#include "daemon/runs/run_registry.h"
#include "tests/unit/temp_dir.h"

/// What a History needs around it, on a fresh state directory (a TempDir
/// named after `name`): structured binding gives dir, io, events, store, runs.
struct HistoryWorld {
  explicit HistoryWorld(const char* name) : dir(name), store(dir.path) {}
  TempDir dir;
  boost::asio::io_context io;
  lpd::daemon::EventBus events;
  lpd::daemon::StateStore store;
  lpd::daemon::RunRegistry runs;
};
