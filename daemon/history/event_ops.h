#pragma once

#include <boost/asio/io_context.hpp>

#include "daemon/core/operation.h"

namespace lpd::daemon {

class EventBus;
class History;

/// events.subscribe: replies at once, then pushes every matching event
/// published after it (optionally after replaying history) until the peer leaves.
json handle_events_subscribe(EventBus& bus, History& history, boost::asio::io_context& io, Call& call);
/// events.list: the history kept in memory, filtered; no subscription.
json handle_events_list(const EventBus& bus, History& history, Call& call);

}  // namespace lpd::daemon
