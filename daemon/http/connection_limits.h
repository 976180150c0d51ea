// issue 16 (h16hard): who may hold how many of lpd's HTTP connections.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <map>
#include <optional>

namespace lpd::daemon::http {

/// ConnectionLimits decides whether lpd takes a new HTTP connection, so one
/// local user cannot keep the HTTP server from everyone else (140 slow
/// connections used to fill the one 128 cap). A connection is counted by
/// the uid of its peer (peer_uid.h; nullopt: unknown, a remote peer) until
/// it authenticates:
///   - at most kMaxConnections in all;
///   - the daemon owner's and root's connections only meet that cap;
///   - any other uid (and all unknown peers together) holds at most
///     kMaxUnauthenticatedPerUid connections not yet authenticated, and
///     all of them together at most kMaxConnections - kReservedForOwner,
///     so the owner always has kReservedForOwner left.
/// An authenticated connection showed the token: it is the owner's from then.
class ConnectionLimits {
 public:
  static constexpr std::size_t kMaxConnections = 128;
  static constexpr std::size_t kMaxUnauthenticatedPerUid = 16;
  static constexpr std::size_t kReservedForOwner = 32;

  explicit ConnectionLimits(uid_t owner) : owner_(owner) {}

  /// Whether a connection from `uid` may be taken; counts it when so.
  bool admit(std::optional<uid_t> uid);
  /// A connection admit() took showed the token.
  void authenticated(std::optional<uid_t> uid);
  /// A connection admit() took closed; `was_authenticated` as last told.
  void release(std::optional<uid_t> uid, bool was_authenticated);

  std::size_t total() const { return total_; }
  /// Connections of `uid` not yet authenticated (other uids' only).
  std::size_t unauthenticated(std::optional<uid_t> uid) const;

 private:
  bool privileged(std::optional<uid_t> uid) const { return uid && (*uid == owner_ || *uid == 0); }
  uid_t owner_;
  std::size_t total_ = 0;
  std::size_t others_ = 0;  // not privileged, not authenticated, all uids
  std::map<std::optional<uid_t>, std::size_t> per_uid_;
};

/// RefusalLog says when to log "refused a connection": the first refusal
/// at once, then at most one line per kInterval with how many were refused
/// since (a flood of refused connections is not a flood of log lines).
class RefusalLog {
 public:
  static constexpr double kInterval = 10.0;  // seconds
  /// A connection was refused at `now` (seconds, monotonic): the count to
  /// log now (this one included), or nullopt to stay quiet.
  std::optional<std::size_t> refused(double now);

 private:
  std::optional<double> last_line_;
  std::size_t unlogged_ = 0;
};

}  // namespace lpd::daemon::http
