// Whether a user may still connect to lpd's Unix socket.
#include "daemon/http/socket_admission.h"

#include <sys/stat.h>

#include <algorithm>

#include "daemon/os/run_as.h"

namespace lpd::daemon::http {

bool socket_admits(uid_t uid, gid_t gid, const std::vector<gid_t>& groups, uid_t socket_uid, gid_t socket_gid,
                   mode_t mode) {
  if (uid == 0) return true;
  if (uid == socket_uid) return (mode & S_IWUSR) != 0;
  if (gid == socket_gid || std::find(groups.begin(), groups.end(), socket_gid) != groups.end())
    return (mode & S_IWGRP) != 0;
  return (mode & S_IWOTH) != 0;
}

bool socket_admits_now(const std::string& socket_path, uid_t uid) {
  struct stat st {};
  if (socket_path.empty() || ::lstat(socket_path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  const auto entry = user_entry(uid);
  if (!entry) return false;
  return socket_admits(uid, entry->gid, groups_of(uid, entry->gid), st.st_uid, st.st_gid, st.st_mode);
}

}  // namespace lpd::daemon::http
