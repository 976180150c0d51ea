#include "daemon/logs/log_cap_rules.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace lpd::daemon {
namespace {

std::uint64_t round_down(std::uint64_t n, std::uint64_t block) { return n - n % block; }
std::uint64_t round_up(std::uint64_t n, std::uint64_t block) { return round_down(n + block - 1, block); }

/// Disk use once [from, keep_from) is freed: the head before `from` and
/// what follows keep_from, in whole blocks, never more than it uses now.
std::uint64_t use_after(const LogUse& log, std::uint64_t from, std::uint64_t keep_from, std::uint64_t block) {
  const std::uint64_t end = round_up(log.size, block);
  const std::uint64_t tail = end > keep_from ? end - keep_from : 0;
  return std::min(log.disk_bytes, std::min(from, end) + tail);
}

/// Where to cut `log` so that at most `keep` bytes of its newest output stay.
std::uint64_t cut_for(const LogUse& log, std::uint64_t keep, std::uint64_t block) {
  return round_down(log.size > keep ? log.size - keep : 0, block);
}

}  // namespace

std::vector<LogFreeing> plan_log_freeing(const std::vector<LogUse>& logs, const LogCaps& limits,
                                         std::uint64_t block) {
  if (block == 0) block = 1;
  const std::uint64_t head = round_down(limits.keep_head, block);
  std::vector<std::uint64_t> use(logs.size());
  std::map<std::size_t, LogFreeing> plan;  // by index: one entry per log
  // frees [from, keep_from); `from` is the kept head (0: none).
  auto drop_front = [&](std::size_t i, std::uint64_t keep_from, std::uint64_t from) {
    const LogUse& log = logs[i];
    // Unread output waits for a helper's pattern, but only up to one cap's
    // worth: a helper that writes faster than lpd reads would otherwise
    // fill the disk while it has not printed its ready line (attacker N1,
    // 5 GB in 6 s); it loses its oldest unread output instead.
    std::uint64_t limit = log.free_limit;
    const std::uint64_t bound = limits.per_log > 0 ? limits.per_log : limits.per_owner;
    if (bound > 0 && log.size > bound) limit = std::max(limit, log.size - bound);
    keep_from = std::min(keep_from, round_down(limit, block));
    from = std::min(from, keep_from);
    const auto it = plan.find(i);
    const std::uint64_t already = it == plan.end() ? log.kept_from : std::max(log.kept_from, it->second.keep_from);
    // a smaller head than the one kept so far still frees something.
    const std::uint64_t head_now = it == plan.end() ? head : it->second.from;
    if (keep_from <= already && from >= head_now) return;
    plan[i] = {LogFreeing::How::kDropFront, log.path, std::max(keep_from, already), std::min(from, head_now)};
    use[i] = use_after(log, plan[i].from, plan[i].keep_from, block);
  };
  auto total = [&] { return std::accumulate(use.begin(), use.end(), std::uint64_t{0}); };
  auto over_owner_cap = [&] { return limits.per_owner > 0 && total() > limits.per_owner; };

  // 1. Each log on its own.
  for (std::size_t i = 0; i < logs.size(); ++i) {
    use[i] = logs[i].disk_bytes;
    if (limits.per_log > 0 && logs[i].disk_bytes > limits.per_log)
      drop_front(i, cut_for(logs[i], limits.per_log / 2, block), head);
  }
  // 2. The owner's logs no helper writes any more, least recently written first.
  std::vector<std::size_t> ended;
  std::size_t live = 0;
  for (std::size_t i = 0; i < logs.size(); ++i) {
    if (logs[i].live) {
      ++live;
    } else {
      ended.push_back(i);
    }
  }
  std::stable_sort(ended.begin(), ended.end(),
                   [&](std::size_t a, std::size_t b) { return logs[a].written_at < logs[b].written_at; });
  for (std::size_t i : ended) {
    if (!over_owner_cap()) break;
    if (use[i] == 0) continue;
    if (logs[i].current) {
      drop_front(i, round_up(logs[i].size, block), 0);  // all of it, its head too
    } else {
      plan[i] = {LogFreeing::How::kRemove, logs[i].path, 0};
    }
    use[i] = 0;
  }
  // 3. The live logs alone are too much: each gets an equal share of half
  //    the cap (half, so that the next freeing is half a cap of output away).
  if (over_owner_cap() && live > 0) {
    const std::uint64_t share = limits.per_owner / 2 / live;
    // a kept head takes at most half of that share.
    const std::uint64_t share_head = std::min(head, round_down(share / 2, block));
    for (std::size_t i = 0; i < logs.size(); ++i)
      if (logs[i].live && use[i] > share)
        drop_front(i, cut_for(logs[i], share - share_head, block), share_head);
  }
  std::vector<LogFreeing> out;
  out.reserve(plan.size());
  for (auto& [i, freeing] : plan) out.push_back(std::move(freeing));
  return out;
}

HelperRoom make_room_for_helper(const std::vector<HelperAge>& helpers, std::size_t max) {
  HelperRoom room;
  if (max == 0 || helpers.size() < max) return room;
  std::vector<std::size_t> ended;
  for (std::size_t i = 0; i < helpers.size(); ++i)
    if (!helpers[i].running) ended.push_back(i);
  const std::size_t excess = helpers.size() - max + 1;  // to leave room for one more
  if (ended.size() < excess) {
    room.refused = true;
    return room;
  }
  std::stable_sort(ended.begin(), ended.end(),
                   [&](std::size_t a, std::size_t b) { return helpers[a].ended_at < helpers[b].ended_at; });
  room.forget.assign(ended.begin(), ended.begin() + static_cast<std::ptrdiff_t>(excess));
  return room;
}

std::uint64_t dropped_after(std::uint64_t dropped_before, bool truncated, std::uint64_t front_or_size) {
  return truncated ? dropped_before + front_or_size : std::max(dropped_before, front_or_size);
}

}  // namespace lpd::daemon
