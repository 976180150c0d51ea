#include "daemon/os/run_as.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <string>

#include "protocol/error.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

std::optional<UserEntry> user_entry(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) != 0 || !found) return std::nullopt;
  return UserEntry{found->pw_name ? found->pw_name : "", found->pw_gid, found->pw_dir ? found->pw_dir : "",
                   found->pw_shell ? found->pw_shell : ""};
}

std::vector<gid_t> groups_of(uid_t uid, gid_t gid) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) != 0 || !found) return {gid};
  int count = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  if (::getgrouplist(pw.pw_name, gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<std::size_t>(count));
    if (::getgrouplist(pw.pw_name, gid, groups.data(), &count) < 0) return {gid};
  }
  groups.resize(static_cast<std::size_t>(count));
  return groups;
}

std::optional<Credentials> run_as(const Peer& peer) {
  const uid_t self = ::geteuid();
  if (peer.uid == static_cast<uid_t>(-1))
    throw Error(ErrorCode::kPermissionDenied, "the caller's credentials are unknown");
  if (self != 0) {
    if (peer.uid != self)
      throw Error(ErrorCode::kPermissionDenied, "this lpd runs as uid " + std::to_string(self) +
                                                    " and cannot start processes for uid " +
                                                    std::to_string(peer.uid));
    return std::nullopt;
  }
  if (peer.uid == 0) return std::nullopt;
  // The caller's own groups, as the kernel saw them when it connected.
  Credentials credentials{peer.uid, peer.gid, peer.groups};
  if (credentials.groups.empty()) credentials.groups = groups_of(peer.uid, peer.gid);
  return credentials;
}

}  // namespace lpd::daemon
