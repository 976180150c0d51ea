#pragma once

#include "daemon/dispatcher.h"

namespace lpd::daemon {

class Daemon;

/// events.subscribe: replies at once, then pushes every matching event
/// published after it (optionally after replaying history) until the peer leaves.
json handle_events_subscribe(Daemon& daemon, Call& call);
/// events.list: the history kept in memory, filtered; no subscription.
json handle_events_list(Daemon& daemon, Call& call);

}  // namespace lpd::daemon
