// what the WebSocket (GET /ws) sends, as plain rules.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
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

/// a whole WebSocket close frame as a server sends it (FIN,
/// opcode 8, unmasked, `code` then `reason`, at most 123 bytes of it), to
/// write straight into the socket when lpd stops (1001 going away).
std::string close_frame_bytes(std::uint16_t code, std::string_view reason);

/// The {"type","payload"} frame itself.
std::string frame(std::string_view type, const std::string& payload_json);

/// What a WebSocket frame carries, for WsOutbox's priorities.
enum class FrameKind {
  kJob,    // a relay job message: never dropped, sent before events
  kEvent,  // anything else (lpd's events, replies): dropped past the bound
};

/// The most of a job's output one WebSocket job frame carries (its newest
/// part, with job_output_text's note saying what is left out); the whole
/// text stays at GET /jobs/{id}. Keeps job frames small enough that none
/// need ever be dropped.
inline constexpr std::size_t kMaxWsJobTextBytes = 64 * 1024;

/// WsOutbox is one WebSocket's send queue, bounded (job messages
/// first and never dropped). Job frames wait in a queue of their own,
/// written before any event frame. Past kMaxQueuedBytes (both queues) an
/// event frame is dropped (counted by its type), and once the queue
/// drained to kDrainedBytes one notice is queued:
///   {"type":"lpd","payload":{"notice":"dropped","count":N,
///    "what":"event frames","types":{"test":n,...}}}
/// Streams lpd paces itself (event replays) wait while it is congested
/// (kCongestedBytes, as a Unix socket session) and lose nothing. Job frames
/// past kMaxJobBytes mean a client that reads nothing: overflowing() says
/// so and the server closes it (memory stays bounded).
class WsOutbox {
 public:
  static constexpr std::size_t kCongestedBytes = 1024 * 1024;
  static constexpr std::size_t kDrainedBytes = 256 * 1024;
  static constexpr std::size_t kMaxQueuedBytes = 4 * 1024 * 1024;
  static constexpr std::size_t kMaxJobBytes = 16 * 1024 * 1024;

  /// Queues `frame`; false when it was dropped (event frames only). One
  /// frame is always taken into an empty queue, however long. `type`: the
  /// frame's type, named in the drop notice.
  bool offer(std::string frame, FrameKind kind = FrameKind::kEvent, std::string_view type = "");
  /// The frame to write next (a job frame if any, else the oldest event
  /// frame), or null when none. The same frame until written().
  const std::string* front();
  /// The frame front() gave was written: removes it (and queues the drop
  /// notice once the queue is down to kDrainedBytes).
  void written();
  bool congested() const { return bytes_ >= kCongestedBytes; }
  bool drained() const { return bytes_ <= kDrainedBytes; }
  bool overflowing() const { return job_bytes_ > kMaxJobBytes; }
  std::size_t queued_bytes() const { return bytes_; }
  std::size_t dropped_pending() const { return dropped_; }
  void clear();

 private:
  std::deque<std::string> jobs_;
  std::deque<std::string> events_;
  std::size_t bytes_ = 0;      // both queues
  std::size_t job_bytes_ = 0;  // jobs_ alone
  std::size_t dropped_ = 0;
  std::map<std::string, std::size_t, std::less<>> dropped_types_;
  enum class Current { kNone, kJob, kEvent } current_ = Current::kNone;
};

}  // namespace lpd::daemon::http
