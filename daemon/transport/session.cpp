#include "daemon/transport/session.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <random>
#include <span>
#include <utility>

#include <poll.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "daemon/transport/fd_passing.h"
#include "protocol/limits.h"
#include "protocol/message.h"
#include "daemon/os/heap_trim.h"

namespace lpd::daemon {

namespace asio = boost::asio;
using protocol::ErrorCode;

namespace {

/// A connection that moved this much (read, or queued at once) leaves
/// enough freed heap behind that glibc would keep it: see trim_heap_soon.
constexpr std::size_t kHeavyBytes = 64 * 1024;
/// Light connections leave a few KB each; this many closing (a crowd of
/// shims that came and went) are worth one trim too.
constexpr std::size_t kLightClosesPerTrim = 512;

/// Light connections closed since the last trim.
std::size_t light_closes = 0;  // one io_context, one thread

/// Where every session's reads land. lpd runs one thread, and a read's
/// bytes are copied into the session's line reader (or handed to its raw
/// stream) before anything else runs, so one buffer serves all: an idle
/// connection holds no read buffer (it used to hold 64 KiB each).
std::span<char> read_buffer() {
  static std::array<char, 64 * 1024> buffer;
  return buffer;
}

/// A write queue that held more lines than this has grown its node map;
/// once empty it is rebuilt small.
constexpr std::size_t kQueueLinesKept = 16;

}  // namespace

struct Session::OwedReply {
  std::weak_ptr<Session> session;
  explicit OwedReply(std::weak_ptr<Session> s) : session(std::move(s)) {}
  OwedReply(const OwedReply&) = delete;
  OwedReply& operator=(const OwedReply&) = delete;
  ~OwedReply() {
    auto self = session.lock();
    if (!self) return;
    --self->owed_replies_;
    // Let go of by a registry, possibly while it walks its own tables:
    // closing (which tells every registry the peer left) waits for a turn.
    if (self->input_ended_ && self->owed_replies_ == 0 && self->open_)
      asio::post(self->socket_.get_executor(), [self] { self->close_if_done(); });
  }
};

Session::Session(Socket socket, Peer peer, Dispatcher& dispatcher,
                 std::chrono::milliseconds hello_timeout, ClosedCallback on_closed, RingPoller* ring_poller,
                 UnfinishedLines* unfinished)
    : socket_(std::move(socket)),
      peer_(std::move(peer)),
      dispatcher_(dispatcher),
      hello_timer_(socket_.get_executor()),
      hello_timeout_(hello_timeout),
      on_closed_(std::move(on_closed)),
      unfinished_(unfinished),
      ring_poller_(ring_poller) {}

void Session::start() {
  hello_timer_.expires_after(hello_timeout_);
  hello_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->peer_.said_hello || !self->open_) return;
    spdlog::info("session {}: no hello within {} ms, closing", self->peer_.session_id,
                 self->hello_timeout_.count());
    self->send(protocol::encode_reply_error(nullptr, ErrorCode::kTimeout,
                                            "no hello received in time; closing connection"));
    self->close_after_flush();
  });
  read_more();
}

void Session::read_more() {
  if (!open_ || closing_ || input_ended_) return;
  // recvmsg rather than async_read_some: only it hands over the descriptors
  // a peer passes (an event ring); a plain read would drop them.
  socket_.async_wait(Socket::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
    if (ec) {
      if (ec != asio::error::operation_aborted)
        spdlog::debug("session {}: wait: {}", self->peer_.session_id, ec.message());
      self->close();
      return;
    }
    self->read_available();
  });
}

void Session::read_available() {
  auto self = shared_from_this();  // a handler may close us while we loop
  // The reactor reports readiness as an edge, so read until the socket is
  // empty; but a few reads at most per turn, so one busy peer cannot starve
  // the others.
  for (int turn = 0; turn < 16; ++turn) {
    if (!open_ || closing_ || input_ended_ || input_paused_) return;  // paused: resume_input() reads on
    Received received = receive_with_fds(socket_.native_handle(), read_buffer());
    for (int fd : received.fds) keep_passed_fd(fd);
    if (received.fds_dropped) passed_fd_dropped_ = true;  // forgotten with the fd (close_passed_fd)
    if (received.bytes < 0) {
      if (received.error == EAGAIN || received.error == EWOULDBLOCK || received.error == EINTR) {
        read_more();
        return;
      }
      spdlog::debug("session {}: read: {}", peer_.session_id, std::strerror(received.error));
      close();
      return;
    }
    if (received.bytes == 0) {
      end_of_input();
      return;
    }
    handle_bytes(std::string_view(read_buffer().data(), static_cast<std::size_t>(received.bytes)));
  }
  if (input_paused_) return;
  asio::post(socket_.get_executor(), [self] { self->read_available(); });
}

void Session::end_of_input() {
  if (peer_hung_up()) {
    close();  // nobody to deliver to; close() reads the event ring one last time
    return;
  }
  // Half-closed: the peer still reads. What it asked for so far is answered
  // (replies already queued, and deferred ones when they come); then close.
  spdlog::debug("session {}: end of requests from pid {}; {} queued, {} replies owed", peer_.session_id,
                peer_.pid, queued_bytes_, owed_replies_);
  input_ended_ = true;
  close_passed_fd();
  watch_for_hangup();
  close_if_done();
}

bool Session::peer_hung_up() {
  // The kernel sets POLLHUP on a stream socket once both directions are
  // shut: the peer closed it (or exited), not just shutdown(SHUT_WR).
  pollfd p{socket_.native_handle(), POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)) != 0;
}

void Session::watch_for_hangup() {
  // wait_error completes on POLLHUP/POLLERR (and out-of-band data, which a
  // Unix socket has none of), not on the end-of-stream readability.
  socket_.async_wait(Socket::wait_error, [self = shared_from_this()](boost::system::error_code ec) {
    if (ec || !self->open_) return;
    if (self->peer_hung_up()) {
      spdlog::debug("session {}: peer closed while replies were owed", self->peer_.session_id);
      self->close();
      return;
    }
    self->watch_for_hangup();
  });
}

void Session::close_if_done() {
  if (!open_ || writing_ || !outgoing_.empty() || owed_replies_ > 0) return;
  close();
}

std::shared_ptr<void> Session::owe_reply() {
  ++owed_replies_;
  return std::make_shared<OwedReply>(weak_from_this());
}

void Session::keep_passed_fd(int fd) {
  close_passed_fd();  // one pending descriptor at most: a peer cannot pile them up in lpd
  passed_fd_.reset(fd);
}

void Session::close_passed_fd() {
  passed_fd_.reset();
  passed_fd_dropped_ = false;
}

int Session::take_passed_fd() {
  return passed_fd_.release();
}

bool Session::attach_ring(std::unique_ptr<MappedEventRing> ring) {
  if (raw_) return false;
  auto& reader = ring->reader();
  // A ring handed over by a killed lpd may still promise that one's read.
  reader.promise_read_by(0);
  if (reader.ring_id() == 0) {
    static std::mt19937_64 ring_ids{std::random_device{}()};
    std::uint64_t id = 0;
    while (id == 0) id = ring_ids();
    reader.set_ring_id(id);
  } else if (auto* watcher = dispatcher_.batches()) {
    // Handed over: the previous lpd may have journaled records it had not
    // yet committed as read when it was killed.
    if (const auto journaled = watcher->ring_journaled_to(reader.ring_id(), peer_.uid);
        journaled && reader.skip_to(*journaled))
      spdlog::info("session {}: the event ring of pid {} is read on from position {}, not {}: a previous lpd's "
                   "journal already holds the records between",
                   peer_.session_id, peer_.pid, *journaled, reader.read_position());
  }
  ring_ = std::move(ring);
  peer_.ring = ring_;
  return true;
}

void Session::drain_ring() {
  if (!ring_ || draining_) return;
  draining_ = true;
  auto self = shared_from_this();
  auto ring = ring_;
  auto drained = read_marked(*ring, self);
  // Journaled, then committed: see BatchWatcher for a kill in between.
  if (drained.records > 0) dispatcher_.end_of_batch();
  ring->reader().commit();
  draining_ = false;
  if (drained.error) detach_ring(ring, *drained.error);
}

std::optional<std::size_t> Session::read_ring() {
  if (!ring_ || !open_) return std::nullopt;
  if (draining_) return 0;  // a drain is under way further up this stack
  draining_ = true;
  auto self = shared_from_this();
  auto ring = ring_;
  auto read = read_marked(*ring, self);
  draining_ = false;
  uncommitted_ring_ = ring;  // committed by commit_ring(), even if the connection closes meanwhile
  if (read.error) detach_ring(ring, *read.error);
  return read.records;
}

protocol::EventRingReader::Drained Session::read_marked(MappedEventRing& ring,
                                                      const std::shared_ptr<Session>& self) {
  auto* watcher = dispatcher_.batches();
  if (watcher) watcher->ring_read_begins();
  auto& reader = ring.reader();
  auto read = reader.read(
      [this, &self](std::string_view record) { dispatcher_.dispatch_line(record, peer_, self, /*one_way_only=*/true); });
  if (watcher) watcher->ring_read_ended(reader.ring_id(), reader.read_position());
  return read;
}

void Session::commit_ring() {
  if (auto ring = std::exchange(uncommitted_ring_, nullptr)) ring->reader().commit();
}

void Session::promise_ring_read_by(std::uint64_t monotonic_ns) {
  if (ring_) ring_->reader().promise_read_by(monotonic_ns);
}

RingPoller& Session::ring_poller() {
  if (!ring_poller_) {
    own_ring_poller_ =
        std::make_unique<RingPoller>(socket_.get_executor(), kRingWindow, [this] { dispatcher_.end_of_batch(); });
    ring_poller_ = own_ring_poller_.get();
  }
  return *ring_poller_;
}

void Session::detach_ring(const std::shared_ptr<MappedEventRing>& ring, const std::string& why) {
  if (ring_ != ring) return;
  spdlog::warn("session {}: event ring of pid {} is corrupt ({}); reading the socket only from now on",
               peer_.session_id, peer_.pid, why);
  send(protocol::encode_reply_error(nullptr, ErrorCode::kBadRequest,
                                    "event ring detached: " + why + "; send on the socket"));
  ring_->reader().promise_read_by(0);
  ring_.reset();
  peer_.ring.reset();
}

bool Session::switch_to_raw(std::function<void(std::string_view)> on_bytes) {
  raw_ = std::move(on_bytes);
  return true;
}

void Session::handle_bytes(std::string_view bytes) {
  if (raw_) {
    raw_(bytes);
    return;
  }
  if (ring_) {
    // Whatever the peer wrote into its ring came before these bytes.
    drain_ring();
    // ...and what it writes next is read on the poller's ticks.
    if (ring_) ring_poller().keep_reading(shared_from_this());
  }
  received_bytes_ += bytes.size();
  reader_.feed(bytes);  // copied: the read buffer is everyone's
  if (process_lines()) count_unfinished();
  dispatcher_.end_of_batch();  // what these lines recorded is written before lpd reads on
}

bool Session::process_lines() {
  auto self = shared_from_this();  // a handler may close us while we loop
  while (open_ && !closing_) {
    if (congested()) {
      // The peer is not taking what it asked for: read nothing more from it
      // (its lines wait here and in the socket) until it does.
      pause_input();
      return false;
    }
    auto next = reader_.next();
    if (next.status == protocol::LineReader::Status::kNeedMore) break;
    if (next.status == protocol::LineReader::Status::kOversized) {
      spdlog::warn("session {}: line over {} bytes from pid {}, closing", peer_.session_id,
                   protocol::kMaxLineBytes, peer_.pid);
      send(protocol::encode_reply_error(
          nullptr, ErrorCode::kTooLarge,
          "line exceeds " + std::to_string(protocol::kMaxLineBytes) + " bytes; closing connection"));
      close_after_flush();
      return false;
    }
    if (next.line.empty()) continue;  // blank lines are harmless keep-alives
    dispatcher_.dispatch_line(next.line, peer_, self);
    if (peer_.said_hello) hello_timer_.cancel();
    if (raw_) {
      // The rest of what was read already belongs to the raw stream.
      std::string rest = reader_.take_buffered();
      if (!rest.empty()) raw_(rest);
      break;
    }
  }
  // A descriptor arrives with the bytes of the message that claims it; one
  // still unclaimed after them is not for us.
  close_passed_fd();
  return true;
}

bool Session::count_unfinished() {
  if (!unfinished_ || !open_ || closing_) return open_ && !closing_;
  const std::size_t now = raw_ ? 0 : reader_.buffered();
  if (unfinished_->hold(peer_.uid, unfinished_held_, now)) {
    unfinished_held_ = now;
    return true;
  }
  const std::size_t mib = unfinished_->max_bytes_per_user() >> 20;
  spdlog::warn("session {}: uid {} holds {} bytes of unfinished request lines over its connections, past {} MiB; "
               "closing the connection of pid {} that went past it",
               peer_.session_id, peer_.uid, unfinished_->held(peer_.uid) - unfinished_held_ + now, mib, peer_.pid);
  send(protocol::encode_reply_error(
      nullptr, ErrorCode::kLimitExceeded,
      "uid " + std::to_string(peer_.uid) + "'s connections hold more than " + std::to_string(mib) +
          " MiB of request lines not yet ended by a newline, the most lpd keeps for one user; closing this "
          "connection (end every line with a newline)"));
  // Let go of those bytes now: the peer may never read the reply.
  unfinished_->release(peer_.uid, std::exchange(unfinished_held_, 0));
  reader_ = protocol::LineReader();
  close_after_flush();
  return false;
}

void Session::pause_input() {
  if (input_paused_) return;
  input_paused_ = true;
  when_drained([weak = weak_from_this()] {
    if (auto self = weak.lock()) self->resume_input();
  });
}

void Session::resume_input() {
  input_paused_ = false;
  if (!open_ || closing_) return;
  if (process_lines() && count_unfinished() && !input_paused_) read_more();
}

void Session::when_drained(std::function<void()> resume) {
  if (!open_) return;
  if (!writing_ || queued_bytes_ <= kDrainedBytes) {
    // Nothing in flight will call it: not from inside this call, though.
    asio::post(socket_.get_executor(), std::move(resume));
    return;
  }
  drain_waiters_.push_back(std::move(resume));
}

ReplySink::StreamSlot Session::claim_stream(std::string_view what) {
  if (streams_ >= kMaxStreams)
    throw protocol::Error(ErrorCode::kLimitExceeded,
                          "a connection may hold at most " + std::to_string(kMaxStreams) +
                              " streams (attaches, log streams, pause watches); " + std::string(what) +
                              " is refused until one ends");
  ++streams_;
  return StreamSlot(nullptr, [weak = weak_from_this()](void*) {
    if (auto self = weak.lock()) --self->streams_;
  });
}

void Session::send(std::string line) {
  if (!open_) return;
  if (line.size() > protocol::kMaxLineBytes) {
    const std::size_t size = line.size();
    line = protocol::within_line_limit(std::move(line));
    if (line.size() != size)
      spdlog::error("session {}: a line of {} bytes for peer pid {} is over the protocol's limit: sent an error "
                    "instead",
                    peer_.session_id, size, peer_.pid);
  }
  const std::size_t in_flight = writing_ ? outgoing_.front().size() : 0;
  if (queued_bytes_ - in_flight >= kMaxQueuedBytes) {
    spdlog::warn("session {}: peer pid {} is not reading ({} bytes queued), dropping it",
                 peer_.session_id, peer_.pid, queued_bytes_);
    close();
    return;
  }
  queued_bytes_ += line.size();
  peak_queued_bytes_ = std::max(peak_queued_bytes_, queued_bytes_);
  outgoing_.push_back(std::move(line));
  if (outgoing_.size() > kQueueLinesKept) queue_grew_ = true;
  write_more();
}

void Session::write_more() {
  if (writing_ || !open_) return;
  if (outgoing_.empty()) {
    if (queue_grew_) {
      // A burst grew the queue's node map; an idle connection gives it back.
      std::deque<std::string>().swap(outgoing_);
      queue_grew_ = false;
    }
    if (closing_ || (input_ended_ && owed_replies_ == 0)) close();
    return;
  }
  writing_ = true;
  asio::async_write(socket_, asio::buffer(outgoing_.front()),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->writing_ = false;
                      if (!self->open_) return;  // close() already dropped the queue
                      if (ec) {
                        self->close();
                        return;
                      }
                      self->queued_bytes_ -= self->outgoing_.front().size();
                      self->outgoing_.pop_front();
                      self->write_more();
                      if (self->queued_bytes_ <= kDrainedBytes && !self->drain_waiters_.empty()) {
                        auto waiters = std::move(self->drain_waiters_);
                        self->drain_waiters_.clear();
                        for (auto& resume : waiters) {
                          if (!self->open_) break;
                          resume();
                        }
                      }
                    });
}

void Session::close_after_flush() {
  closing_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(Socket::shutdown_receive, ignored);
  write_more();
}

void Session::close() {
  if (!open_) return;
  // What the peer wrote into its ring before it went counts: read it while
  // this session still stands for the peer. No read is promised after it:
  // a shim that writes on wakes lpd, and learns that this connection ended.
  if (ring_) ring_->reader().promise_read_by(0);
  drain_ring();
  // Mapped until the listeners below had the peer (a test's phase mark is
  // read then), held by a local: on_closed_ may destroy this session.
  const auto ring_mapping = std::move(peer_.ring);
  ring_.reset();
  close_passed_fd();
  open_ = false;
  hello_timer_.cancel();
  boost::system::error_code ignored;
  socket_.close(ignored);
  outgoing_.clear();
  outgoing_.shrink_to_fit();
  queued_bytes_ = 0;
  drain_waiters_.clear();  // what waited for this peer never will now
  if (received_bytes_ >= kHeavyBytes || peak_queued_bytes_ >= kHeavyBytes || ++light_closes >= kLightClosesPerTrim) {
    light_closes = 0;
    trim_heap_soon(socket_.get_executor());
  }
  if (unfinished_) unfinished_->release(peer_.uid, std::exchange(unfinished_held_, 0));
  if (on_closed_) on_closed_(*this);
}

}  // namespace lpd::daemon
