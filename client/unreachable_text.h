#pragma once
// what lpctl says when lpd does not answer on its
// socket, the one place every command's connection error is phrased
// (lpctl_main.cpp). Plain rules, no I/O.

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "client/connection.h"

namespace lpd::client {

/// The name of group `gid` in `etc_group` (the text of /etc/group:
/// "name:x:gid:members" lines), as "lpd (gid 998)"; "gid 998" when no line
/// names it (a group from another database: lpctl is static and asks
/// no NSS module, see static_user_lookup.cpp).
inline std::string group_label(gid_t gid, std::string_view etc_group) {
  const std::string wanted = std::to_string(gid);
  while (!etc_group.empty()) {
    const auto end = etc_group.find('\n');
    std::string_view line = etc_group.substr(0, end);
    etc_group = end == std::string_view::npos ? std::string_view() : etc_group.substr(end + 1);
    const auto c1 = line.find(':');
    const auto c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    const auto c3 = c2 == std::string_view::npos ? c2 : line.find(':', c2 + 1);
    if (c3 == std::string_view::npos || c1 == 0) continue;
    if (line.substr(c2 + 1, c3 - c2 - 1) == wanted) return std::string(line.substr(0, c1)) + " (gid " + wanted + ")";
  }
  return "gid " + wanted;
}

/// The line lpctl prints for `e` (without "lpctl: " and the newline).
/// Nobody there or no answer: start lpd. `denied` (EACCES): lpd is there
/// but this user may not connect; `socket_group`: group_label of the
/// socket's group when lpctl could stat it, so the user knows which group
/// to ask for (a root lpd gives its socket to --socket-group, mode 0660).
inline std::string unreachable_text(const DaemonUnreachable& e, const std::optional<std::string>& socket_group) {
  if (!e.denied()) return std::string(e.what()) + ". Start it with: lpd start --socket " + e.socket_path();
  std::string text = "lpd is running on " + e.socket_path() + ", but you may not connect to it (" + e.why() + "): ";
  if (socket_group)
    return text + "its socket lets in only its owner and members of group " + *socket_group +
           ". Ask the host's admin to add you to that group (usermod -aG GROUP USER; it counts from your next "
           "login)";
  return text + "its socket, or the directory it is in, keeps you out. Ask the host's admin for access (a root lpd "
                "lets in members of its --socket-group)";
}

}  // namespace lpd::client
