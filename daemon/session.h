#pragma once

#include <array>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/dispatcher.h"
#include "daemon/event_ring_mapping.h"
#include "daemon/peer.h"
#include "protocol/line_reader.h"

namespace lpd::daemon {

/// Session is one connection: it frames lines, hands them to the dispatcher
/// and writes what comes back, in order. It holds no business state: the
/// registries learn about it only through its Peer and its close callback.
class Session : public ReplySink, public std::enable_shared_from_this<Session> {
 public:
  using Socket = boost::asio::local::stream_protocol::socket;
  using ClosedCallback = std::function<void(Session&)>;

  /// Outgoing bytes allowed to queue for a peer that does not read; past
  /// this the peer is dropped rather than letting it grow the daemon.
  static constexpr std::size_t kMaxQueuedBytes = 64 * 1024 * 1024;
  /// How late an event-ring message may be read. The shim rings (sends a
  /// blank line) at most once per window; every ring is followed by one
  /// more read a window later, which catches what was written in between.
  static constexpr std::chrono::milliseconds kRingWindow{10};

  Session(Socket socket, Peer peer, Dispatcher& dispatcher,
          std::chrono::milliseconds hello_timeout, ClosedCallback on_closed);

  void start();
  /// Stops reading and closes once everything queued has been written.
  void close_after_flush();
  void close();

  void send(std::string line) override;
  bool open() const override { return open_; }
  bool switch_to_raw(std::function<void(std::string_view)> on_bytes) override;
  int take_passed_fd() override;
  bool attach_ring(std::unique_ptr<MappedEventRing> ring) override;
  /// Dispatches whatever the peer wrote into its event ring so far. lpd
  /// calls it before judging how a process ended.
  void drain_ring();

  Peer& peer() { return peer_; }
  const Peer& peer() const { return peer_; }

 private:
  void read_more();
  void read_available();
  void handle_bytes(std::size_t n);
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
  std::function<void(std::string_view)> raw_;  // set once the peer switched to a raw stream
  std::array<char, 64 * 1024> read_buffer_{};
  int passed_fd_ = -1;  // SCM_RIGHTS descriptor not yet claimed by an operation
  std::shared_ptr<MappedEventRing> ring_;  // shared: a drain keeps it alive through a close()
  boost::asio::steady_timer ring_timer_;
  bool draining_ = false;
  std::deque<std::string> outgoing_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool open_ = true;
  bool closing_ = false;  // no more reads; close when outgoing_ drains
};

}  // namespace lpd::daemon
