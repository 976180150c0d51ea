#include "daemon/processes/process_lease.h"

namespace lpd::daemon {

void Leases::wait(const ProcessKey& key, std::uint64_t session) { entries_[key].waiting.insert(session); }

void Leases::settle(const ProcessKey& key, std::uint64_t session, std::uint64_t generation, bool ready) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  const auto waited = e.waiting.find(session);
  if (waited == e.waiting.end()) return;  // the connection left while it waited
  e.waiting.erase(waited);
  if (ready) {
    if (e.generation != generation) {
      e.holders.clear();
      e.generation = generation;
    }
    e.holders.insert(session);
  }
  if (e.holders.empty() && e.waiting.empty()) entries_.erase(it);
}

bool Leases::release(const ProcessKey& key, std::uint64_t session) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return false;
  const bool held = it->second.holders.erase(session) > 0;
  if (it->second.holders.empty() && it->second.waiting.empty()) entries_.erase(it);
  return held;
}

std::vector<ProcessKey> Leases::peer_gone(std::uint64_t session) {
  std::vector<ProcessKey> touched;
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = it->second;
    const bool held = e.holders.erase(session) > 0;
    const bool waited = e.waiting.erase(session) > 0;
    if (held || waited) touched.push_back(it->first);
    if (e.holders.empty() && e.waiting.empty()) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  return touched;
}

void Leases::ended(const ProcessKey& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  it->second.holders.clear();
  if (it->second.waiting.empty()) entries_.erase(it);
}

bool Leases::holds(const ProcessKey& key, std::uint64_t session) const {
  auto it = entries_.find(key);
  return it != entries_.end() && it->second.holders.count(session) > 0;
}

std::size_t Leases::holders(const ProcessKey& key, std::uint64_t generation) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return 0;
  const std::size_t held = it->second.generation == generation ? it->second.holders.size() : 0;
  return held + it->second.waiting.size();
}

KillVerdict kill_verdict(bool force, bool caller_holds, std::size_t holders_including_caller) {
  if (force || !caller_holds || holders_including_caller <= 1) return KillVerdict::kKill;
  return KillVerdict::kReleaseOnly;
}

}  // namespace lpd::daemon
