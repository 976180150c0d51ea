#pragma once

#include "daemon/event_bus.h"
#include "daemon/state_store.h"

namespace lpd::daemon {

/// RunJournal mirrors every event that belongs to a run into
/// runs/<run_id>/events.jsonl, one line per event, for tools that read
/// pytest-live-pause's layout. It only listens; the socket stays the
/// control channel.
class RunJournal {
 public:
  RunJournal(EventBus& events, const StateStore& store);

 private:
  const StateStore& store_;
};

}  // namespace lpd::daemon
