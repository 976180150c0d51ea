#include "daemon/ops/event_ops.h"

#include "daemon/daemon.h"
#include "protocol/message.h"

namespace lpd::daemon {
namespace {

/// Which events one subscriber wants.
struct EventFilter {
  std::string run_id;                  // empty: all runs
  std::vector<std::string> prefixes;   // empty: all types; "pause." matches pause.created etc.

  bool matches(const Event& e) const {
    if (!run_id.empty() && e.run_id != run_id) return false;
    if (prefixes.empty()) return true;
    for (const auto& p : prefixes)
      if (e.type.rfind(p, 0) == 0) return true;
    return false;
  }
};

EventFilter filter_of(const Call& call) {
  return {call.fields.optional_string("run_id").value_or(""), call.fields.string_list("types")};
}

}  // namespace

json handle_events_subscribe(Daemon& daemon, Call& call) {
  const EventFilter filter = filter_of(call);
  const bool replay = call.fields.optional_boolean("replay").value_or(false);
  std::weak_ptr<ReplySink> sink = call.sink;
  // Reply first, so the client sees the acknowledgement before any push.
  Responder responder = call.defer();
  std::uint64_t last_seq = daemon.events().history().empty() ? 0 : daemon.events().history().back().seq;
  responder.ok({{"subscribed", true}, {"last_seq", last_seq}});
  if (replay) {
    if (auto s = sink.lock()) {
      for (const auto& e : daemon.events().history())
        if (filter.matches(e)) s->send(protocol::encode_push(e.type, e.push_data()));
    }
  }
  daemon.events().subscribe(
      [sink, filter](const Event& e) {
        if (!filter.matches(e)) return;
        if (auto s = sink.lock()) s->send(protocol::encode_push(e.type, e.push_data()));
      },
      call.peer.session_id);
  return json();
}

json handle_events_list(Daemon& daemon, Call& call) {
  const EventFilter filter = filter_of(call);
  json events = json::array();
  for (const auto& e : daemon.events().history())
    if (filter.matches(e)) events.push_back({{"event", e.type}, {"data", e.push_data()}});
  return {{"events", events}};
}


}  // namespace lpd::daemon
