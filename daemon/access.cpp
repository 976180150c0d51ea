#include "daemon/access.h"

#include <algorithm>
#include <string>

#include "protocol/error.h"

namespace lpd::daemon {

bool may_act_on(const Peer& peer, uid_t owner, const AccessPolicy& policy) {
  if (peer.uid == 0 || peer.uid == owner) return true;
  if (!policy.admin_gid) return false;
  return peer.gid == *policy.admin_gid ||
         std::find(peer.groups.begin(), peer.groups.end(), *policy.admin_gid) != peer.groups.end();
}

void require_may_act(const Peer& peer, uid_t owner, std::string_view what, const AccessPolicy& policy) {
  if (may_act_on(peer, owner, policy)) return;
  throw protocol::Error(protocol::ErrorCode::kPermissionDenied,
                        std::string(what) + " belongs to uid " + std::to_string(owner) + "; uid " +
                            std::to_string(peer.uid) + " may not act on it");
}

}  // namespace lpd::daemon
