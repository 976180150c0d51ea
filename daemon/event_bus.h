#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>

#include <sys/types.h>

#include <nlohmann/json.hpp>

namespace lpd::daemon {

/// Event is one fact that left a registry: a job changed state, a test
/// started, a pause was created, a process became ready, a crash happened.
struct Event {
  std::uint64_t seq = 0;  // strictly increasing within one daemon lifetime
  double time = 0;        // seconds since the epoch
  std::string type;       // "pause.created", "job", "test.start", "process.ready", ...
  std::string run_id;     // empty when the event belongs to no run
  uid_t owner = static_cast<uid_t>(-1);
  nlohmann::json data;

  /// The push a subscriber receives: {"event": type, "data": {...data, seq, time, run_id}}.
  nlohmann::json push_data() const;
};

/// EventBus is the only way facts leave a registry. Subscribers are called
/// synchronously in publish order; a bounded history lets a late subscriber
/// (`lpctl events` without --follow) see what happened before it came.
class EventBus {
 public:
  using Subscriber = std::function<void(const Event&)>;
  static constexpr std::size_t kHistory = 10'000;

  /// Returns a token for unsubscribe(). `session` (0 for none) ties the
  /// subscription to a connection so drop_session() ends it when the peer leaves.
  std::uint64_t subscribe(Subscriber subscriber, std::uint64_t session = 0);
  void unsubscribe(std::uint64_t token);
  void drop_session(std::uint64_t session);

  const Event& publish(std::string type, nlohmann::json data, std::string run_id = {},
                       uid_t owner = static_cast<uid_t>(-1));

  const std::deque<Event>& history() const { return history_; }

 private:
  struct Subscription {
    Subscriber callback;
    std::uint64_t session;
  };
  std::map<std::uint64_t, Subscription> subscribers_;
  std::uint64_t next_token_ = 1;
  std::uint64_t next_seq_ = 1;
  std::deque<Event> history_;
};

}  // namespace lpd::daemon
