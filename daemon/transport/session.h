#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/transport/dispatcher.h"
#include "daemon/core/event_ring_mapping.h"
#include "daemon/core/peer.h"
#include "daemon/core/event_ring_mapping.h"
#include "daemon/transport/ring_poller.h"
#include "daemon/transport/unfinished_lines.h"
#include "daemon/core/unique_fd.h"
#include "protocol/line_reader.h"

namespace lpd::daemon {

/// Session is one connection: it frames lines, hands them to the dispatcher
/// and writes what comes back, in order. It holds no business state: the
/// registries learn about it only through its Peer and its close callback.
/// It paces its peer: while more than kCongestedBytes wait to be written,
/// it reads no more requests, and the streams lpd produces for the peer
/// wait (when_drained), so a peer that reads slowly, or never, holds lpd to
/// about one queue's worth of memory.
///
/// End of stream from the peer means "no more requests", as for a shell
/// pipe or `socat` (half-close, shutdown(SHUT_WR)): the session reads no
/// more, but stays until every reply owed to requests already read has
/// been written (owe_reply()), then closes. Pushes of subscriptions and
/// streams go on only until then. A peer that closed both directions (it
/// exited) can read nothing: the session closes at once.
///
/// Memory follows use: reads go through one buffer shared by all sessions
/// (lpd has one thread), the line reader and the write queue give back what
/// a big line took; an idle connection costs a few kilobytes.
class Session : public ReplySink, public RingPoller::Source, public std::enable_shared_from_this<Session> {
 public:
  using Socket = boost::asio::local::stream_protocol::socket;
  using ClosedCallback = std::function<void(Session&)>;

  /// From this many queued outgoing bytes on, the connection is congested:
  /// lpd stops reading the peer's requests, and the streams it produces
  /// itself (output, logs, event replays) wait (ReplySink::when_drained).
  static constexpr std::size_t kCongestedBytes = 1024 * 1024;
  /// ...and they go on once the queue is down to this.
  static constexpr std::size_t kDrainedBytes = 256 * 1024;
  /// Bytes allowed to wait behind the line being written. With the above,
  /// only replies to requests already read and one-off pushes can pass
  /// the congestion mark; a peer that lets them pile up past this is
  /// dropped rather than growing the daemon. One line is always accepted
  /// below the mark, however long (a big events.list).
  static constexpr std::size_t kMaxQueuedBytes = 4 * 1024 * 1024;
  /// Long-lived streams (attaches, log streams, pause watches) one
  /// connection may hold at once; each costs descriptors and timers.
  static constexpr std::size_t kMaxStreams = 32;
  /// How late an event-ring message may be read. lpd reads a ring whenever
  /// its connection wakes it (a blank line will do) and then on the ring
  /// poller's tick every window until a tick finds nothing new, and says in
  /// the ring's read-by word when the next tick is; the shim wakes lpd only
  /// when no tick is promised and a window passed since its last wake-up
  /// (see RingPoller). 50 ms: a test event still reaches `lpctl events
  /// --follow` within 100 ms, and a busy suite costs lpd 20 ticks a second
  /// (a read of each ring and one journal write each) for all its processes.
  static constexpr std::chrono::milliseconds kRingWindow{50};

  /// `ring_poller`: the daemon's, shared by every connection; none: the
  /// session makes its own when a ring is attached. `unfinished`: the
  /// server's count of its peers' unfinished lines per user (none: no
  /// bound but the line limit); a session that takes its user past it is
  /// told `limit_exceeded` and closed.
  Session(Socket socket, Peer peer, Dispatcher& dispatcher,
          std::chrono::milliseconds hello_timeout, ClosedCallback on_closed, RingPoller* ring_poller = nullptr,
          UnfinishedLines* unfinished = nullptr);

  void start();
  /// Stops reading and closes once everything queued has been written.
  void close_after_flush();
  void close();

  void send(std::string line) override;
  bool open() const override { return open_; }
  bool switch_to_raw(std::function<void(std::string_view)> on_bytes) override;
  int take_passed_fd() override;
  bool passed_fd_dropped() const override { return passed_fd_dropped_; }
  bool attach_ring(std::unique_ptr<MappedEventRing> ring) override;
  bool congested() const override { return queued_bytes_ >= kCongestedBytes; }
  void when_drained(std::function<void()> resume) override;
  StreamSlot claim_stream(std::string_view what) override;
  std::shared_ptr<void> owe_reply() override;
  /// Replies owed to requests already read (deferred, not yet sent).
  std::size_t owed_replies() const { return owed_replies_; }
  /// True once the peer ended its requests (end of stream).
  bool input_ended() const { return input_ended_; }
  /// Dispatches whatever the peer wrote into its event ring so far. lpd
  /// calls it before judging how a process ended.
  void drain_ring();

  Peer& peer() { return peer_; }
  const Peer& peer() const { return peer_; }

 private:
  /// Released by the last holder of one owe_reply() token.
  struct OwedReply;

  // RingPoller::Source: the poller's tick.
  std::optional<std::size_t> read_ring() override;
  void commit_ring() override;
  void promise_ring_read_by(std::uint64_t monotonic_ns) override;
  /// Reads `ring`'s new records into the dispatcher (for `self`), without
  /// committing, between the BatchWatcher's ring_read_begins/ended: the
  /// journals then mark how far that ring is recorded.
  protocol::EventRingReader::Drained read_marked(MappedEventRing& ring, const std::shared_ptr<Session>& self);
  RingPoller& ring_poller();
  /// Stops reading `ring` (when it is still this session's): a corrupt ring.
  void detach_ring(const std::shared_ptr<MappedEventRing>& ring, const std::string& why);

  void read_more();
  void read_available();
  void handle_bytes(std::string_view bytes);
  /// The peer's end of stream: close, or deliver what is owed first.
  void end_of_input();
  /// True when the peer closed both directions (it can read nothing more).
  bool peer_hung_up();
  /// After a half-close: closes when the peer closes its reading side too.
  void watch_for_hangup();
  /// Closes once nothing is queued, being written, or owed.
  void close_if_done();
  /// Dispatches the complete lines read so far; false when it stopped
  /// because the connection is congested (it goes on once drained).
  bool process_lines();
  /// Counts what the line reader still holds against the user's share
  /// (UnfinishedLines); past it, says so and closes. False when closing.
  bool count_unfinished();
  void pause_input();
  void resume_input();
  void keep_passed_fd(int fd);
  void close_passed_fd();
  void write_more();

  Socket socket_;
  Peer peer_;
  Dispatcher& dispatcher_;
  boost::asio::steady_timer hello_timer_;
  std::chrono::milliseconds hello_timeout_;
  ClosedCallback on_closed_;

  protocol::LineReader reader_;
  UnfinishedLines* unfinished_;
  std::size_t unfinished_held_ = 0;  // what unfinished_ counts for this session
  std::function<void(std::string_view)> raw_;  // set once the peer switched to a raw stream
  UniqueFd passed_fd_;  // SCM_RIGHTS descriptor not yet claimed by an operation
  bool passed_fd_dropped_ = false;  // ...or one the kernel dropped on the way (MSG_CTRUNC)
  std::shared_ptr<MappedEventRing> ring_;  // shared: a drain keeps it alive through a close()
  std::shared_ptr<MappedEventRing> uncommitted_ring_;  // read on a tick, its position not yet published
  RingPoller* ring_poller_;                  // the daemon's, or own_ring_poller_
  std::unique_ptr<RingPoller> own_ring_poller_;
  bool draining_ = false;
  std::deque<std::string> outgoing_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  std::vector<std::function<void()>> drain_waiters_;
  bool input_paused_ = false;  // congested: the peer's bytes wait in the socket
  std::size_t streams_ = 0;    // stream slots claimed (claim_stream)
  std::size_t received_bytes_ = 0;      // for the heap trim at close
  std::size_t peak_queued_bytes_ = 0;   // likewise
  bool open_ = true;
  bool closing_ = false;  // no more reads; close when outgoing_ drains
  bool input_ended_ = false;  // the peer half-closed: close when outgoing_ drains and nothing is owed
  std::size_t owed_replies_ = 0;  // live owe_reply() tokens
  bool queue_grew_ = false;       // outgoing_ held many lines: shrink it once empty
};

}  // namespace lpd::daemon
