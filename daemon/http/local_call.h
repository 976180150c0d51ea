// one request through lpd's dispatcher on behalf of an HTTP client.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "daemon/transport/dispatcher.h"
#include "daemon/core/peer.h"

namespace lpd::daemon::http {

/// The Peer an HTTP request or WebSocket acts as: the token's user `uid`
/// (UserTokens says whose a token is). For lpd's own user, lpd's
/// uid, gid and supplementary groups; for another user, the primary gid of
/// the passwd database (getpwuid_r) and the groups of the group database
/// (getgrouplist, as run_as's groups_of), as `id USER` shows them. A
/// session number of its own (counted from kFirstSession, apart from the
/// Unix socket's), hello already said (role "http"). pid is lpd's: there
/// is no process on the other end lpd could watch. nullopt when `uid` is
/// no user in the passwd database (the token's user was removed).
std::optional<Peer> http_peer(std::string client_name, uid_t uid);

/// whether `uid` is lpd's own user or in the passwd database (one
/// http_peer can act as).
bool is_known_user(uid_t uid);

/// Sessions of HTTP requests and WebSockets are numbered from here, so
/// they never meet a Unix socket session's number.
inline constexpr std::uint64_t kFirstSession = std::uint64_t{1} << 48;

/// Sends `op` with `fields` through `dispatcher` as `peer` (the same gates
/// as on the Unix socket) and calls `done` once with the reply object
/// ({"id","ok","result"|"error"}), now or later (a deferred reply).
/// Pushes the op may send are ignored. `peer` lives until the reply came.
void call_op(Dispatcher& dispatcher, std::shared_ptr<Peer> peer, std::string op, json fields,
             std::function<void(json reply)> done);

/// The HTTP status for a protocol error code (bad_request 400, not_found
/// 404, conflict 409, permission_denied 403, ...).
int http_status_of(std::string_view error_code);

}  // namespace lpd::daemon::http
