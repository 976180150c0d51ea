#pragma once

#include <optional>
#include <string>
#include <vector>

#include "daemon/core/peer.h"
#include "daemon/os/launcher.h"

namespace lpd::daemon {

/// As whom a peer's command runs: the peer itself. A root lpd switches to
/// the peer's uid, gid and supplementary groups; it never runs a non-root
/// peer's command as root. A non-root lpd can only run commands as itself
/// (nullopt means "as lpd"). Throws permission_denied otherwise.
std::optional<Credentials> run_as(const Peer& peer);

/// The groups a user belongs to per the user database (getgrouplist).
std::vector<gid_t> groups_of(uid_t uid, gid_t gid);

/// A user's entry in the passwd database (getpwuid_r): name, primary
/// group, home directory, login shell ("" when the entry has none).
struct UserEntry {
  std::string name;
  gid_t gid = static_cast<gid_t>(-1);
  std::string home;
  std::string shell;
};
/// nullopt when the database has no such uid or does not answer.
std::optional<UserEntry> user_entry(uid_t uid);

}  // namespace lpd::daemon
