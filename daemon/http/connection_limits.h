// who may hold how many of lpd's HTTP connections.
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
/// it authenticates, then by the uid of the token it showed (140
/// authenticated WebSockets of one user used to fill it too):
///   - at most kMaxConnections in all;
///   - the daemon owner's and root's connections (by peer uid before the
///     token, by token after) only meet that cap;
///   - any other uid (and all unknown peers together) holds at most
///     kMaxUnauthenticatedPerUid connections not yet authenticated;
///   - any other user's token holds at most kMaxAuthenticatedPerUid
///     connections (a quarter of all: dashboards in a few tabs, each a
///     WebSocket and some requests, fit easily);
///   - all of those together at most kMaxConnections - kReservedForOwner,
///     so the owner and root always have kReservedForOwner left.
class ConnectionLimits {
 public:
  static constexpr std::size_t kMaxConnections = 128;
  static constexpr std::size_t kMaxUnauthenticatedPerUid = 16;
  static constexpr std::size_t kMaxAuthenticatedPerUid = kMaxConnections / 4;
  static constexpr std::size_t kReservedForOwner = 32;

  explicit ConnectionLimits(uid_t owner) : owner_(owner) {}

  /// Whether a connection from `peer` may be taken; counts it when so.
  bool admit(std::optional<uid_t> peer);
  /// A connection admit() took from `peer` showed `token_user`'s token:
  /// true when it counts as that user's from now on; false (nothing
  /// changed: it is still `peer`'s unauthenticated one) when that user holds
  /// kMaxAuthenticatedPerUid already or the other users' share is full.
  bool authenticate(std::optional<uid_t> peer, uid_t token_user);
  /// A connection admit() took from `peer` closed; `token_user`: whose it
  /// was since authenticate() said true, nullopt if never.
  void release(std::optional<uid_t> peer, std::optional<uid_t> token_user);

  std::size_t total() const { return total_; }
  /// Connections of `peer` not yet authenticated (other uids' only).
  std::size_t unauthenticated(std::optional<uid_t> peer) const;
  /// Connections authenticated with `token_user`'s token (other uids' only).
  std::size_t authenticated(uid_t token_user) const;

 private:
  bool privileged(std::optional<uid_t> uid) const { return uid && (*uid == owner_ || *uid == 0); }
  static void drop(std::map<std::optional<uid_t>, std::size_t>& counts, std::optional<uid_t> uid);
  uid_t owner_;
  std::size_t total_ = 0;
  std::size_t others_ = 0;  // not privileged: unauthenticated by peer, authenticated by token
  std::map<std::optional<uid_t>, std::size_t> per_uid_;         // unauthenticated, by peer uid
  std::map<std::optional<uid_t>, std::size_t> per_token_user_;  // authenticated, by token uid
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
