// who may hold how many of lpd's HTTP connections.
#include "daemon/http/connection_limits.h"

namespace lpd::daemon::http {

bool ConnectionLimits::admit(std::optional<uid_t> peer) {
  if (total_ >= kMaxConnections) return false;
  if (!privileged(peer)) {
    if (others_ >= kMaxConnections - kReservedForOwner) return false;
    std::size_t& mine = per_uid_[peer];
    if (mine >= kMaxUnauthenticatedPerUid) return false;
    ++mine;
    ++others_;
  }
  ++total_;
  return true;
}

void ConnectionLimits::drop(std::map<std::optional<uid_t>, std::size_t>& counts, std::optional<uid_t> uid) {
  const auto it = counts.find(uid);
  if (it != counts.end() && --it->second == 0) counts.erase(it);
}

bool ConnectionLimits::authenticate(std::optional<uid_t> peer, uid_t token_user) {
  const bool peer_counted = !privileged(peer) && unauthenticated(peer) > 0;
  if (!privileged(token_user)) {
    if (authenticated(token_user) >= kMaxAuthenticatedPerUid) return false;
    // Moving from the peer's count to the token user's leaves others_ as it
    // was; a privileged peer's connection showing another user's token joins it.
    if (!peer_counted && others_ >= kMaxConnections - kReservedForOwner) return false;
  }
  if (peer_counted) {
    drop(per_uid_, peer);
    --others_;
  }
  if (!privileged(token_user)) {
    ++per_token_user_[token_user];
    ++others_;
  }
  return true;
}

void ConnectionLimits::release(std::optional<uid_t> peer, std::optional<uid_t> token_user) {
  if (total_ > 0) --total_;
  std::map<std::optional<uid_t>, std::size_t>& counts = token_user ? per_token_user_ : per_uid_;
  const std::optional<uid_t> whose = token_user ? token_user : peer;
  if (privileged(whose)) return;
  const auto it = counts.find(whose);
  if (it == counts.end() || it->second == 0) return;
  drop(counts, whose);
  --others_;
}

std::size_t ConnectionLimits::unauthenticated(std::optional<uid_t> peer) const {
  const auto it = per_uid_.find(peer);
  return it == per_uid_.end() ? 0 : it->second;
}

std::size_t ConnectionLimits::authenticated(uid_t token_user) const {
  const auto it = per_token_user_.find(token_user);
  return it == per_token_user_.end() ? 0 : it->second;
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
