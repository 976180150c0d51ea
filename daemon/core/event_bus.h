#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <sys/types.h>

#include <boost/container/small_vector.hpp>

#include <nlohmann/json.hpp>

namespace lpd::daemon {

struct Peer;

/// Event is one fact that left a registry: a job changed state, a test
/// started, a pause was created, a process became ready, a crash happened.
struct Event {
  std::uint64_t seq = 0;  // strictly increasing, across restarts too (see SeqReservation)
  double time = 0;        // seconds since the epoch, in whole microseconds
  std::string type;       // "pause.created", "job", "test.start", "process.ready", ...
  std::string run_id;     // empty when the event belongs to no run
  uid_t owner = static_cast<uid_t>(-1);

  /// The event's facts, a JSON value (an object for every event lpd
  /// publishes). An event published as text (EventBus::publish_text) is
  /// parsed on first use: the per-test events are written to the journals
  /// and usually read by nobody, so most never become a tree.
  const nlohmann::json& data() const;
  void set_data(nlohmann::json value);
  /// `object_text` is one compact JSON object lpd encoded itself (valid
  /// UTF-8), none of whose keys is "event", "seq", "time" or "run_id".
  void set_data_text(std::string object_text);
  /// The push a subscriber receives: {"event": type, "data": {...data, seq, time, run_id}}.
  nlohmann::json push_data() const { return with_envelope(data()); }
  /// `view` (this event's data, or what a reader may see of it) plus seq,
  /// time and run_id, which every reader sees.
  nlohmann::json with_envelope(nlohmann::json view) const;
  /// `data` as compact JSON, invalid UTF-8 replaced. Encoded on first use
  /// and kept while the event is being published, so the two journals that
  /// write every event encode it once (see EventBus::publish).
  const std::string& data_text() const;
  /// Whether data_text() can be spliced into an envelope: an object none of
  /// whose keys is "event", "seq", "time" or "run_id" (known without a tree
  /// for an event published as text).
  bool data_is_plain_object() const;

 private:
  friend class EventBus;
  // At least one of the two is set; both while the event is being published.
  mutable std::optional<nlohmann::json> data_;
  mutable std::optional<std::string> data_text_;
  bool plain_text_ = false;  // data_text_ came from set_data_text()
  /// What this event holds in the bus's history (estimated, bytes); 0 while
  /// it is being published.
  std::size_t kept_bytes_ = 0;
};

/// Which events one subscriber wants. Matching must stay cheap however many
/// subscribers there are: the bus indexes filters by (run_id, prefix), so a
/// published event costs a few lookups, not one comparison per filter.
struct EventFilter {
  /// A connection may hold at most this many subscriptions.
  static constexpr std::size_t kMaxSubscriptionsPerSession = 16;
  /// A filter may list at most this many type prefixes...
  static constexpr std::size_t kMaxTypes = 64;
  /// ...each (and the run_id) at most this long.
  static constexpr std::size_t kMaxFilterBytes = 128;

  std::string run_id;                 // empty: all runs
  std::set<std::string, std::less<>> prefixes;  // empty: all types; "pause." matches pause.created etc.

  bool matches(std::string_view run, std::string_view type) const;
  bool matches(const Event& e) const { return matches(e.run_id, e.type); }

  /// A filter from a peer's fields. Throws protocol::Error limit_exceeded
  /// past kMaxTypes or kMaxFilterBytes (nothing is allocated for it then).
  static EventFilter checked(std::string run_id, const std::vector<std::string>& types);
};

/// EventBus is the only way facts leave a registry. Subscribers are called
/// synchronously in publish order; a bounded history lets a late subscriber
/// (`lpctl events` without --follow) see what happened before it came.
class EventBus {
 public:
  using Subscriber = std::function<void(const Event&)>;
  static constexpr std::size_t kHistory = 10'000;
  /// The history is also bounded in bytes (64 MiB, estimated): 10,000
  /// events of failed tests with long tracebacks took hundreds of MB.
  /// Older events are in the journals (events.list reads them there).
  static constexpr std::size_t kHistoryBytes = 64u << 20;

  /// Every event, for lpd's own listeners. Returns a token for unsubscribe().
  /// `session` (0 for none) ties the subscription to a connection so
  /// peer_gone() ends it when the peer leaves.
  std::uint64_t subscribe(Subscriber subscriber, std::uint64_t session = 0);
  /// The events `filter` matches. A session (not 0) may hold at most
  /// EventFilter::kMaxSubscriptionsPerSession: past that, throws
  /// protocol::Error limit_exceeded.
  std::uint64_t subscribe(EventFilter filter, Subscriber subscriber, std::uint64_t session);
  void unsubscribe(std::uint64_t token);
  /// The connection is gone: its subscriptions end.
  void peer_gone(const Peer& peer);
  std::size_t subscriptions_of(std::uint64_t session) const;
  /// Whether subscription `token`'s filter matches `e` (false once it is gone).
  bool matches(std::uint64_t token, const Event& e) const;

  const Event& publish(std::string type, nlohmann::json data, std::string run_id = {},
                       uid_t owner = static_cast<uid_t>(-1));
  /// publish() for data lpd encoded itself (see Event::set_data_text): the
  /// per-test events, which would otherwise build a tree only to dump it.
  const Event& publish_text(std::string type, std::string data_object_text, std::string run_id = {},
                            uid_t owner = static_cast<uid_t>(-1));

  const std::deque<Event>& history() const { return history_; }
  /// The event of `seq` while the history keeps it; nullptr otherwise.
  const Event* find(std::uint64_t seq) const;
  /// The seq of the latest event published (0 before the first).
  std::uint64_t last_seq() const { return next_seq_ - 1; }

  /// Seqs go on from `next` (a restarted lpd continues past its
  /// predecessor's). Before a seq at or past the reserved limit is used,
  /// `reserve(seq)` is called and returns the new limit (exclusive): it
  /// records the reservation, so seqs are never handed out twice. Call
  /// before the first publish.
  void continue_seqs(std::uint64_t next, std::function<std::uint64_t(std::uint64_t seq)> reserve);

 private:
  struct Subscription {
    Subscriber callback;
    std::uint64_t session;
    EventFilter filter;
  };
  using IndexKey = std::pair<std::string, std::string>;  // (run_id or "", type prefix or "")
  using IndexView = std::pair<std::string_view, std::string_view>;
  /// Orders IndexKeys and finds them by IndexView: matching() looks up a
  /// dozen (run, prefix) pairs per event without building a string.
  struct IndexLess {
    using is_transparent = void;
    static IndexView view(const IndexKey& k) { return {k.first, k.second}; }
    static IndexView view(const IndexView& k) { return k; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const { return view(a) < view(b); }
  };
  /// Tokens of the subscriptions an event reaches; a few, so kept inline.
  using Tokens = boost::container::small_vector<std::uint64_t, 8>;

  Tokens matching(const Event& e) const;
  const Event& deliver(Event event);

  /// The last few (run_id, type) pairs matched and their tokens: a run's
  /// events are mostly test.start and test.finish by turns, and looking up
  /// every prefix of the type under two runs was a tenth of publishing one.
  /// Emptied whenever a subscription comes or goes.
  struct MatchMemo {
    std::string run_id;
    std::string type;
    Tokens tokens;
  };
  static constexpr std::size_t kMemoSlots = 4;
  mutable std::array<std::optional<MatchMemo>, kMemoSlots> memo_;
  mutable std::size_t memo_next_ = 0;  // the slot the next miss replaces
  void forget_matches() {
    for (auto& slot : memo_) slot.reset();
  }

  std::map<std::uint64_t, Subscription> subscribers_;
  /// Each subscription is listed under every (run_id, prefix) of its filter.
  std::map<IndexKey, std::set<std::uint64_t>, IndexLess> index_;
  std::unordered_map<std::uint64_t, std::size_t> per_session_;
  std::uint64_t next_token_ = 1;
  std::uint64_t next_seq_ = 1;
  std::uint64_t seq_limit_ = UINT64_MAX;  // seqs below it are reserved
  std::function<std::uint64_t(std::uint64_t)> reserve_;
  std::deque<Event> history_;
  std::size_t history_bytes_ = 0;  // the kept_bytes_ of the events in history_
};

}  // namespace lpd::daemon
