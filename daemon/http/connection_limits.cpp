// issue 16 (h16hard): who may hold how many of lpd's HTTP connections.
#include "daemon/http/connection_limits.h"

namespace lpd::daemon::http {

bool ConnectionLimits::admit(std::optional<uid_t> uid) {
  if (total_ >= kMaxConnections) return false;
  if (!privileged(uid)) {
    if (others_ >= kMaxConnections - kReservedForOwner) return false;
    std::size_t& mine = per_uid_[uid];
    if (mine >= kMaxUnauthenticatedPerUid) return false;
    ++mine;
    ++others_;
  }
  ++total_;
  return true;
}

void ConnectionLimits::authenticated(std::optional<uid_t> uid) {
  if (privileged(uid)) return;
  const auto it = per_uid_.find(uid);
  if (it == per_uid_.end() || it->second == 0) return;
  if (--it->second == 0) per_uid_.erase(it);
  --others_;
}

void ConnectionLimits::release(std::optional<uid_t> uid, bool was_authenticated) {
  if (total_ > 0) --total_;
  if (privileged(uid) || was_authenticated) return;
  const auto it = per_uid_.find(uid);
  if (it == per_uid_.end() || it->second == 0) return;
  if (--it->second == 0) per_uid_.erase(it);
  --others_;
}

std::size_t ConnectionLimits::unauthenticated(std::optional<uid_t> uid) const {
  const auto it = per_uid_.find(uid);
  return it == per_uid_.end() ? 0 : it->second;
}

std::optional<std::size_t> RefusalLog::refused(double now) {
  ++unlogged_;
  if (last_line_ && now - *last_line_ < kInterval) return std::nullopt;
  last_line_ = now;
  const std::size_t count = unlogged_;
  unlogged_ = 0;
  return count;
}

}  // namespace lpd::daemon::http
