#pragma once

#include <optional>
#include <string_view>

#include <sys/types.h>

#include "daemon/peer.h"

namespace lpd::daemon {

/// Who may act on an object. Anyone may look; acting (resume, kill, stop)
/// is for the object's owner, root, and members of the admin group.
struct AccessPolicy {
  std::optional<gid_t> admin_gid;
};

bool may_act_on(const Peer& peer, uid_t owner, const AccessPolicy& policy);

/// Throws permission_denied naming `what` (e.g. "pause 3f2a") and its owner.
void require_may_act(const Peer& peer, uid_t owner, std::string_view what, const AccessPolicy& policy);

}  // namespace lpd::daemon
