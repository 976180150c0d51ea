#include "daemon/history/journal_quota.h"

namespace lpd::daemon {

JournalQuota::RunBytes& JournalQuota::known(const std::string& run_id, uid_t owner) {
  auto it = runs_.find(run_id);
  if (it != runs_.end()) return it->second;
  return runs_.emplace(run_id, RunBytes{owner, 0, true}).first->second;
}

void JournalQuota::add(RunBytes& run, std::uint64_t bytes) {
  run.bytes += bytes;
  OwnerBytes& owner = owners_[run.owner];
  owner.all += bytes;
  if (run.active) owner.active += bytes;
}

void JournalQuota::subtract(const RunBytes& run) {
  auto it = owners_.find(run.owner);
  if (it == owners_.end()) return;
  it->second.all -= std::min(it->second.all, run.bytes);
  if (run.active) it->second.active -= std::min(it->second.active, run.bytes);
  if (it->second.all == 0 && it->second.active == 0) owners_.erase(it);
}

void JournalQuota::measured(const std::string& run_id, uid_t owner, std::uint64_t bytes, bool active) {
  forget(run_id);
  RunBytes& run = known(run_id, owner);
  run.active = active;
  add(run, bytes);
}

void JournalQuota::ended(std::string_view run_id) {
  auto it = runs_.find(run_id);
  if (it == runs_.end() || !it->second.active) return;
  auto owner = owners_.find(it->second.owner);
  if (owner != owners_.end()) owner->second.active -= std::min(owner->second.active, it->second.bytes);
  it->second.active = false;
}

JournalQuota::Verdict JournalQuota::admit(const std::string& run_id, uid_t owner, std::uint64_t bytes) {
  RunBytes& run = known(run_id, owner);
  if (limits_.per_run > 0 && run.bytes + bytes > limits_.per_run) return Verdict::kRunFull;
  // Only active runs' bytes stand in the way: ended ones are retention's
  // to remove (over_owner), a late line of one (a crash noticed after its
  // end) included.
  if (limits_.per_owner > 0 && run.active && owner_active_bytes(run.owner) + bytes > limits_.per_owner)
    return Verdict::kOwnerFull;
  add(run, bytes);
  return Verdict::kWrite;
}

JournalQuota::Verdict JournalQuota::admit_runless(uid_t owner, std::uint64_t bytes, double now) {
  if (limits_.per_owner == 0) return Verdict::kWrite;
  Runless& mine = runless_[owner];
  const auto hour = static_cast<std::int64_t>(now / 3600);
  if (limits_.runless_window_seconds > 0) {
    // Whole hours older than the window have left the journal by age.
    const auto oldest = static_cast<std::int64_t>((now - limits_.runless_window_seconds) / 3600);
    while (!mine.hours.empty() && mine.hours.front().first < oldest) {
      mine.total -= std::min(mine.total, mine.hours.front().second);
      mine.hours.pop_front();
    }
  }
  if (mine.total + bytes > limits_.per_owner) return Verdict::kOwnerFull;
  if (mine.hours.empty() || mine.hours.back().first < hour) mine.hours.emplace_back(hour, 0);
  mine.hours.back().second += bytes;
  mine.total += bytes;
  return Verdict::kWrite;
}

void JournalQuota::force(const std::string& run_id, uid_t owner, std::uint64_t bytes) {
  add(known(run_id, owner), bytes);
}

void JournalQuota::forget(std::string_view run_id) {
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return;
  subtract(it->second);
  runs_.erase(it);
}

std::uint64_t JournalQuota::run_bytes(std::string_view run_id) const {
  auto it = runs_.find(run_id);
  return it == runs_.end() ? 0 : it->second.bytes;
}

std::uint64_t JournalQuota::owner_bytes(uid_t owner) const {
  auto it = owners_.find(owner);
  return it == owners_.end() ? 0 : it->second.all;
}

std::uint64_t JournalQuota::owner_active_bytes(uid_t owner) const {
  auto it = owners_.find(owner);
  return it == owners_.end() ? 0 : it->second.active;
}

bool JournalQuota::over_owner(uid_t owner) const {
  return limits_.per_owner > 0 && owner_bytes(owner) > limits_.per_owner;
}

}  // namespace lpd::daemon
