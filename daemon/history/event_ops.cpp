#include "daemon/history/event_ops.h"

#include <algorithm>
#include <optional>

#include <boost/asio/post.hpp>

#include "daemon/core/event_bus.h"
#include "daemon/history/history.h"
#include "daemon/core/paging.h"
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
      e.type, e.with_envelope(visible_to(reader, access, e.owner, record_kind_of_event(e.type), e.data())));
}

/// One subscription's pushes to one peer. While the peer keeps up, each
/// event goes out as it is published. When the peer's queue is full the
/// stream falls back on the kept history: it notes the next seq to send
/// and, once the queue drained, sends on from the history (the journal on
/// disk, then memory) until it caught up; a replay or a `since` starts the
/// same way. So a slow reader holds lpd to one queue's worth of memory, and
/// loses events only when they are no longer kept (the seqs show the gap).
/// History and live never overlap or leave a gap: both run on the one event
/// loop, and the stream goes live only once the history reached the last
/// event published.
class SubscriptionStream : public std::enable_shared_from_this<SubscriptionStream> {
 public:
  SubscriptionStream(EventBus& bus, History& history, boost::asio::io_context& io, std::weak_ptr<ReplySink> sink,
                     Peer reader, AccessPolicy access)
      : bus_(bus), history_(history), io_(io), sink_(std::move(sink)), reader_(std::move(reader)), access_(access) {}

  /// Sends the kept events after `after` (nullopt: none) that subscription
  /// `token` matches, then goes live.
  void start(std::uint64_t token, std::optional<std::uint64_t> after) {
    token_ = token;
    if (after) behind_ = *after + 1;
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
    pump_posted_ = false;
    auto sink = sink_.lock();
    if (!sink || !sink->open() || !behind_) return;
    bool congested = false;
    const auto walked = history_.walk(*behind_ - 1, PageLimits::kMaxScanBytes, [&](const Event& e) {
      if (sink->congested()) {
        congested = true;
        return false;
      }
      if (bus_.matches(token_, e)) sink->send(push_line_for(e, reader_, access_));
      return true;
    });
    behind_ = walked.last + 1;
    if (congested) {
      wait_for(*sink);
      return;
    }
    if (walked.exhausted) {
      behind_.reset();  // caught up (nothing is published meanwhile): live from the next event
      return;
    }
    // More journal to read: let the loop serve others between two stretches.
    if (!pump_posted_) {
      pump_posted_ = true;
      boost::asio::post(io_, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->pump();
      });
    }
  }

  void wait_for(ReplySink& sink) {
    if (waiting_) return;
    waiting_ = true;
    sink.when_drained([weak = weak_from_this()] {
      if (auto self = weak.lock()) self->pump();
    });
  }

  EventBus& bus_;
  History& history_;
  boost::asio::io_context& io_;
  std::uint64_t token_ = 0;  // the bus keeps the filter, under this token
  std::weak_ptr<ReplySink> sink_;
  const Peer reader_;
  const AccessPolicy access_;
  std::optional<std::uint64_t> behind_;  // next seq to send from the history; nullopt: live
  bool waiting_ = false;                 // a when_drained() is pending
  bool pump_posted_ = false;             // a pump() is posted
};

/// The `since` field: events after this seq (nullopt when absent).
std::optional<std::uint64_t> since_of(const Call& call) {
  const auto since = call.fields.optional_integer("since");
  if (since && *since < 0) throw protocol::Error(protocol::ErrorCode::kBadRequest, "field \"since\" must be 0 or more");
  if (!since) return std::nullopt;
  return static_cast<std::uint64_t>(*since);
}

/// since_of(call), refused when it is past the last seq published. Seqs
/// only grow, across restarts too: such a `since` is not a seq of this
/// history (another state directory's, a typo). Taken as asked, a stream
/// would go live with seqs below it, breaking the promise of "only what
/// came after" (waiting for the seqs to pass it would show nothing for as
/// long), and a listing would say "nothing after it", exit 0, to a
/// cursor that names nothing: the same error for both.
std::optional<std::uint64_t> known_since(const Call& call, const EventBus& bus) {
  const auto since = since_of(call);
  if (since && *since > bus.last_seq())
    throw protocol::Error(protocol::ErrorCode::kBadRequest,
                          "since " + std::to_string(*since) + " is past the last event published (seq " +
                              std::to_string(bus.last_seq()) +
                              "): seqs only grow, so it is no seq of this lpd's history; give one it sent");
  return since;
}

}  // namespace

json handle_events_subscribe(EventBus& bus, History& history, boost::asio::io_context& io, Call& call) {
  EventFilter filter = filter_of(call);
  const bool replay = call.fields.optional_boolean("replay").value_or(false);
  const auto since = known_since(call, bus);
  auto stream =
      std::make_shared<SubscriptionStream>(bus, history, io, call.sink, call.peer, call.access);
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
  std::optional<std::uint64_t> after = since;
  if (!after && replay && !bus.history().empty()) after = bus.history().front().seq - 1;
  stream->start(token, after);
  return json();
}

json handle_events_list(const EventBus& bus, History& history, Call& call) {
  const EventFilter filter = filter_of(call);
  const std::size_t limit = PageLimits::items(call.fields.optional_integer("limit"));
  // Without `since`: from the oldest event kept (journal included).
  const std::uint64_t after = known_since(call, bus).value_or(0);
  PageBudget page(limit, PageLimits::kMaxReplyBytes);
  json events = json::array();
  const auto walked = history.walk(after, PageLimits::kMaxScanBytes, [&](const Event& e) {
    if (!filter.matches(e)) return true;
    json item = {{"event", e.type},
                 {"data", e.with_envelope(call.view(record_kind_of_event(e.type), e.owner, e.data()))}};
    if (!page.take(item.dump().size())) return false;
    events.push_back(std::move(item));
    return true;
  }, &filter);
  // `next`: the `since` of the next page; null once the reader caught up.
  return {{"events", std::move(events)},
          {"next", walked.exhausted ? json(nullptr) : json(walked.last)},
          {"last_seq", bus.last_seq()}};
}

}  // namespace lpd::daemon
