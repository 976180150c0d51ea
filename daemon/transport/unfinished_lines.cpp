#include "daemon/transport/unfinished_lines.h"

namespace lpd::daemon {

bool UnfinishedLines::hold(uid_t uid, std::size_t was, std::size_t now) {
  if (uid == 0 || was == now) return true;
  auto it = held_.find(uid);
  const std::size_t total = it == held_.end() ? 0 : it->second;
  const std::size_t others = total >= was ? total - was : 0;  // a miscount never underflows
  if (now > was && others + now > max_) return false;
  if (others + now == 0) {
    if (it != held_.end()) held_.erase(it);
  } else {
    held_[uid] = others + now;
  }
  return true;
}

std::size_t UnfinishedLines::held(uid_t uid) const {
  auto it = held_.find(uid);
  return it == held_.end() ? 0 : it->second;
}

}  // namespace lpd::daemon
