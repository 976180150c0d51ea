#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/transport/dispatcher.h"
#include "daemon/transport/session.h"
#include "daemon/transport/unfinished_lines.h"

namespace lpd::daemon {

/// Server accepts connections on an already listening Unix socket and keeps
/// the set of live sessions. Who bound the socket (lpd itself or systemd) is
/// not its business.
///
/// Every accepted socket is close-on-exec (accept4), so no child lpd starts
/// inherits another user's connection. Out of descriptors (EMFILE, ENFILE),
/// the server still answers: it keeps one spare descriptor, and gives it up
/// to take the waiting connection, tell it `unavailable` with the cause, and
/// close it, instead of leaving every newcomer hanging in the backlog.
class Server {
 public:
  /// Told once a connection is gone (the peer left or lpd closed it).
  class PeerWatcher {
   public:
    virtual ~PeerWatcher() = default;
    /// `peer`: whose connection it was (its session id is not reused).
    virtual void peer_gone(const Peer& peer) = 0;
  };

  /// Connections accepted (or turned away) in one turn of the event loop
  /// before the other work gets its turn.
  static constexpr int kAcceptsPerTurn = 32;

  /// `peers`: told of every connection that ends.
  Server(boost::asio::io_context& io, Dispatcher& dispatcher, std::chrono::milliseconds hello_timeout,
         PeerWatcher& peers);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Starts accepting on `listen_fd`, which the server now owns (and marks
  /// close-on-exec: systemd passes it without).
  void start(int listen_fd);
  /// Stops accepting and closes every session.
  void stop();

  /// Connections one non-root uid may hold open at once by default
  /// (`lpd start --connections-per-user-max`); past it a new one gets one
  /// `limit_exceeded` line and is closed.
  static constexpr std::size_t kMaxConnectionsPerUser = 1024;
  /// Sets that limit; 0: none.
  void set_connections_per_user(std::size_t limit) { connections_per_user_ = limit; }
  std::size_t open_sessions() const { return sessions_.size(); }
  std::uint64_t accepted_total() const { return next_session_id_ - 1; }
  /// Connections answered `unavailable` because lpd was out of descriptors.
  std::uint64_t turned_away_total() const { return turned_away_total_; }
  /// Looks a live session up by id; null once it is gone.
  std::shared_ptr<Session> session(std::uint64_t id) const;

 private:
  void accept_next();
  void accept_ready();
  void start_session(int fd);
  enum class TurnAway {
    kAnswered,       // one waiting connection was told `unavailable`; look for more
    kNobodyWaiting,  // the backlog is empty: wait for the next connection
    kNoSpare,        // no spare descriptor to do it with: back off
  };
  /// Out of descriptors: spends the spare one on the next waiting
  /// connection, to tell it why it cannot be served, and takes it back.
  TurnAway turn_away(int error);
  /// Writes `line` to a connection lpd will not serve, then closes it.
  static void say_and_close(UniqueFd fd, const std::string& line);
  void retry_accept_later(const char* why, int error);
  void reopen_spare();

  boost::asio::io_context& io_;
  Dispatcher& dispatcher_;
  std::chrono::milliseconds hello_timeout_;
  std::size_t connections_per_user_ = kMaxConnectionsPerUser;
  // Every session's unfinished request lines, per uid; before sessions_,
  // which outlive it otherwise.
  UnfinishedLines unfinished_lines_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer accept_retry_;
  RingPoller ring_poller_;  // every connection's event ring, on one tick
  std::unordered_map<std::uint64_t, std::shared_ptr<Session>> sessions_;
  std::uint64_t next_session_id_ = 1;
  UniqueFd spare_fd_;  // /dev/null, held only to be given up under EMFILE
  std::map<uid_t, std::size_t> connections_per_uid_;
  std::size_t refused_in_a_row_ = 0;
  std::uint64_t turned_away_total_ = 0;
  std::uint64_t turned_away_in_a_row_ = 0;
  PeerWatcher& peers_;
};

}  // namespace lpd::daemon
