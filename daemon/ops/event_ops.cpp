#include "daemon/ops/event_ops.h"

#include <algorithm>
#include <optional>

#include "daemon/daemon.h"
#include "protocol/message.h"

namespace lpd::daemon {
namespace {

/// The filter of an events.subscribe / events.list call, within the limits
/// (limit_exceeded past them).
EventFilter filter_of(const Call& call) {
  return EventFilter::checked(call.fields.optional_string("run_id").value_or(""), call.fields.string_list("types"));
}

/// The push `reader` receives for `e`: the whole event for those who may
/// read its owner's content, its metadata for everyone else.
std::string push_line_for(const Event& e, const Peer& reader, const AccessPolicy& access) {
  return protocol::encode_push(
      e.type, e.with_envelope(visible_to(reader, access, e.owner, record_kind_of_event(e.type), e.data)));
}

/// One subscription's pushes to one peer. While the peer keeps up, each
/// event goes out as it is published. When the peer's queue is full the
/// stream falls back on the bus's history: it notes the next seq to send
/// and, once the queue drained, sends on from the history until it caught
/// up (a replay works the same way from the oldest event kept). So a slow
/// reader holds lpd to one queue's worth of memory, and loses events only
/// when it falls more than the whole history behind (the seqs show the gap).
class SubscriptionStream : public std::enable_shared_from_this<SubscriptionStream> {
 public:
  SubscriptionStream(EventBus& bus, std::weak_ptr<ReplySink> sink, Peer reader, AccessPolicy access)
      : bus_(bus), sink_(std::move(sink)), reader_(std::move(reader)), access_(access) {}

  /// Sends the kept events from `seq` on (nullopt: none) that subscription
  /// `token` matches, then goes live.
  void start(std::uint64_t token, std::optional<std::uint64_t> seq) {
    token_ = token;
    behind_ = seq;
    pump();
  }

  /// A live event the bus matched to this subscription.
  void on_event(const Event& e) {
    if (behind_) return;  // the pump reaches it in the history
    auto sink = sink_.lock();
    if (!sink || !sink->open()) return;
    if (sink->congested()) {
      behind_ = e.seq;
      wait_for(*sink);
      return;
    }
    sink->send(push_line_for(e, reader_, access_));
  }

 private:
  void pump() {
    waiting_ = false;
    auto sink = sink_.lock();
    if (!sink || !sink->open()) return;
    while (behind_ && *behind_ <= bus_.last_seq()) {
      if (sink->congested()) {
        wait_for(*sink);
        return;
      }
      const Event* e = bus_.find(*behind_);
      if (!e) {
        // Fell out of the history while the reader was behind: go on from
        // the oldest event still kept.
        if (bus_.history().empty() || bus_.history().front().seq <= *behind_) break;
        behind_ = bus_.history().front().seq;
        continue;
      }
      ++*behind_;
      if (bus_.matches(token_, *e)) sink->send(push_line_for(*e, reader_, access_));
    }
    behind_.reset();  // caught up: live from the next event
  }

  void wait_for(ReplySink& sink) {
    if (waiting_) return;
    waiting_ = true;
    sink.when_drained([weak = weak_from_this()] {
      if (auto self = weak.lock()) self->pump();
    });
  }

  EventBus& bus_;
  std::uint64_t token_ = 0;  // the bus keeps the filter, under this token
  std::weak_ptr<ReplySink> sink_;
  const Peer reader_;
  const AccessPolicy access_;
  std::optional<std::uint64_t> behind_;  // next seq to send from the history; nullopt: live
  bool waiting_ = false;                 // a when_drained() is pending
};

}  // namespace

json handle_events_subscribe(Daemon& daemon, Call& call) {
  EventFilter filter = filter_of(call);
  const bool replay = call.fields.optional_boolean("replay").value_or(false);
  auto& bus = daemon.events();
  auto stream = std::make_shared<SubscriptionStream>(bus, call.sink, call.peer, call.access);
  // Subscribing first: past the connection's limit it throws, and nothing was sent.
  const auto token = bus.subscribe(
      std::move(filter),
      [stream](const Event& e) {
        // A send may close the connection, which unsubscribes this very
        // callback: keep the stream alive until the call returns.
        auto keep = stream;
        keep->on_event(e);
      },
      call.peer.session_id);
  // Reply first, so the client sees the acknowledgement before any push.
  Responder responder = call.defer();
  responder.ok({{"subscribed", true}, {"last_seq", bus.last_seq()}});
  std::optional<std::uint64_t> from;
  if (replay && !bus.history().empty()) from = bus.history().front().seq;
  stream->start(token, from);
  return json();
}

json handle_events_list(Daemon& daemon, Call& call) {
  const EventFilter filter = filter_of(call);
  json events = json::array();
  for (const auto& e : daemon.events().history()) {
    if (!filter.matches(e)) continue;
    events.push_back({{"event", e.type},
                      {"data", e.with_envelope(call.view(record_kind_of_event(e.type), e.owner, e.data))}});
  }
  return {{"events", events}};
}

}  // namespace lpd::daemon
