// issue 16 (h16api): what the WebSocket (GET /ws) sends, as plain rules.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace lpd::daemon::http {

/// The id of the events.subscribe request a WebSocket makes for itself
/// when it opens; its reply is not sent on.
inline constexpr std::string_view kEventsRequestId = "lpd-ws-events";

/// The WebSocket frame for one line lpd's dispatcher sent to the socket
/// (protocol/README.md "Envelopes"), in the relay's {"type", "payload"}
/// envelope (docs: protocol/README.md "HTTP and WebSocket"):
///   reply {"id","ok",...}          -> {"type":"reply","payload":{the reply}}
///   push {"event":E,"data":D}      -> {"type":first component of E,"payload":{...D,"event":E}}
///   lpd's `job` event (a run's job) -> {"type":"job","payload":{id,state,returncode,text,...}},
///     relay-shaped, so every "job" frame reads as pytest-relay-run's.
/// nullopt for the reply to kEventsRequestId, and for the `job` event of a
/// run `is_relay_run` claims (its relay job sends its own frames).
std::optional<std::string> frame_of_line(std::string_view line,
                                         const std::function<bool(const std::string& run_id)>& is_relay_run);

/// The {"type","payload"} frame itself.
std::string frame(std::string_view type, const std::string& payload_json);

/// WsOutbox is one WebSocket's send queue, bounded: past kMaxQueuedBytes a
/// frame is dropped (counted), and once the queue drained to
/// kDrainedBytes one {"type":"lpd","payload":{"notice":"dropped","count":N}}
/// is queued. Streams lpd paces itself (event replays) wait while it is
/// congested (kCongestedBytes, as a Unix socket session) and lose nothing.
class WsOutbox {
 public:
  static constexpr std::size_t kCongestedBytes = 1024 * 1024;
  static constexpr std::size_t kDrainedBytes = 256 * 1024;
  static constexpr std::size_t kMaxQueuedBytes = 4 * 1024 * 1024;

  /// Queues `frame`; false when it was dropped. One frame is always taken
  /// into an empty queue, however long.
  bool offer(std::string frame);
  /// The frame to write next (the front), or null when none.
  const std::string* front() const { return queue_.empty() ? nullptr : &queue_.front(); }
  /// The front frame was written: removes it (and queues the drop notice
  /// once the queue is down to kDrainedBytes).
  void written();
  bool congested() const { return bytes_ >= kCongestedBytes; }
  bool drained() const { return bytes_ <= kDrainedBytes; }
  std::size_t queued_bytes() const { return bytes_; }
  std::size_t dropped_pending() const { return dropped_; }
  void clear();

 private:
  std::deque<std::string> queue_;
  std::size_t bytes_ = 0;
  std::size_t dropped_ = 0;
};

}  // namespace lpd::daemon::http
