// Whether a user may still connect to lpd's Unix socket: an HTTP token acts
// only while its user may (one permission model: the socket's).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace lpd::daemon::http {

/// Whether the kernel would let user `uid` (primary group `gid`,
/// supplementary `groups`) connect to a socket file of owner `socket_uid`,
/// group `socket_gid` and `mode`: root always; the owner by the owner's
/// write bit; a member of its group by the group's; anyone else by the
/// others' (connect(2) needs write permission; the first class that
/// matches decides, as for any file).
bool socket_admits(uid_t uid, gid_t gid, const std::vector<gid_t>& groups, uid_t socket_uid, gid_t socket_gid,
                   mode_t mode);

/// socket_admits for lpd's socket at `socket_path` now (lstat: a link is
/// not followed) and `uid`'s groups in the group database. False when the
/// socket or the user cannot be looked up.
bool socket_admits_now(const std::string& socket_path, uid_t uid);

}  // namespace lpd::daemon::http
