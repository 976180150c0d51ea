// h14logcap (issue 14, second round): the helper log cap's rules: what to
// free in one log, in one owner's logs, and which helper records go.

#include <catch2/catch.hpp>

#include "daemon/logs/log_cap_rules.h"

using namespace lpd::daemon;

namespace {

constexpr std::uint64_t kCapBlock = 4096;
constexpr std::uint64_t kCapMiB = 1024 * 1024;

LogUse log(std::string path, std::uint64_t size, bool live, std::int64_t written_at = 0, bool current = true) {
  LogUse use;
  use.path = std::move(path);
  use.size = size;
  use.disk_bytes = (size + kCapBlock - 1) / kCapBlock * kCapBlock;
  use.live = live;
  use.current = current || live;
  use.written_at = written_at;
  return use;
}

HelperLogLimits limits(std::uint64_t per_log, std::uint64_t per_owner) {
  HelperLogLimits l;
  l.per_log = per_log;
  l.per_owner = per_owner;
  return l;
}

}  // namespace

TEST_CASE("a log within its cap is left alone") {
  CHECK(plan_log_freeing({log("a", kCapMiB, true)}, limits(kCapMiB, 10 * kCapMiB), kCapBlock).empty());
  CHECK(plan_log_freeing({log("a", 100 * kCapMiB, true)}, limits(0, 0), kCapBlock).empty());  // no limits
}

TEST_CASE("a log over its cap keeps its newest half-cap, cut at a block") {
  const auto plan = plan_log_freeing({log("a", 10 * kCapMiB + 100, true)}, limits(kCapMiB, 0), kCapBlock);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].how == LogFreeing::How::kDropFront);
  CHECK(plan[0].path == "a");
  CHECK(plan[0].keep_from % kCapBlock == 0);
  // At most half the cap (plus the block the cut rounds down into) stays.
  CHECK(10 * kCapMiB + 100 - plan[0].keep_from <= kCapMiB / 2 + kCapBlock);
  CHECK(10 * kCapMiB + 100 - plan[0].keep_from >= kCapMiB / 2);
}

TEST_CASE("a log whose front is already freed is judged by its disk use, not its size") {
  LogUse cut = log("a", 10 * kCapMiB, true);
  cut.kept_from = 10 * kCapMiB - kCapMiB / 2;
  cut.disk_bytes = kCapMiB / 2;
  CHECK(plan_log_freeing({cut}, limits(kCapMiB, 0), kCapBlock).empty());
  cut.disk_bytes = kCapMiB + kCapBlock;  // it grew past the cap again
  cut.size = cut.kept_from + cut.disk_bytes;
  const auto plan = plan_log_freeing({cut}, limits(kCapMiB, 0), kCapBlock);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].keep_from > cut.kept_from);
}

TEST_CASE("over the owner's cap, ended logs go first, least recently written first") {
  const std::vector<LogUse> logs{log("live", 2 * kCapMiB, true, 50), log("old", 2 * kCapMiB, false, 10, false),
                                 log("older", 2 * kCapMiB, false, 5, false), log("newer", 2 * kCapMiB, false, 20, false)};
  // 8 MiB in all, 5 allowed: two ended ones must go, the two oldest.
  const auto plan = plan_log_freeing(logs, limits(0, 5 * kCapMiB), kCapBlock);
  REQUIRE(plan.size() == 2);
  CHECK(plan[0].path == "old");  // (listed in the input's order)
  CHECK(plan[1].path == "older");
  for (const auto& f : plan) CHECK(f.how == LogFreeing::How::kRemove);
}

TEST_CASE("an ended helper's current log is emptied, not removed, so it can still be named") {
  const std::vector<LogUse> logs{log("live", 2 * kCapMiB, true, 50), log("ended", 2 * kCapMiB + 10, false, 10, true)};
  const auto plan = plan_log_freeing(logs, limits(0, 3 * kCapMiB), kCapBlock);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].path == "ended");
  CHECK(plan[0].how == LogFreeing::How::kDropFront);
  CHECK(plan[0].keep_from >= 2 * kCapMiB + 10);  // all of it
  CHECK(plan[0].keep_from % kCapBlock == 0);
}

TEST_CASE("live logs alone over the owner's cap each keep an equal share of half of it") {
  const std::vector<LogUse> logs{log("a", 4 * kCapMiB, true), log("b", 4 * kCapMiB, true), log("small", 100 * 1024, true)};
  const auto plan = plan_log_freeing(logs, limits(0, 6 * kCapMiB), kCapBlock);
  REQUIRE(plan.size() == 2);  // the small one is under its share
  for (const auto& f : plan) {
    CHECK(f.how == LogFreeing::How::kDropFront);
    CHECK(4 * kCapMiB - f.keep_from <= kCapMiB + kCapBlock);  // share: 6 MiB / 2 / 3 live
  }
}

TEST_CASE("the per-log cut counts toward the owner's total before anything else goes") {
  // One live log far over its own cap; once cut it fits the owner's cap,
  // so the ended log stays.
  const std::vector<LogUse> logs{log("chatty", 50 * kCapMiB, true, 50), log("kept", kCapMiB, false, 1, false)};
  const auto plan = plan_log_freeing(logs, limits(4 * kCapMiB, 4 * kCapMiB), kCapBlock);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].path == "chatty");
}

TEST_CASE("a plan frees enough: what stays fits the owner's cap") {
  std::vector<LogUse> logs;
  for (int i = 0; i < 6; ++i) logs.push_back(log("live" + std::to_string(i), (3 + i) * kCapMiB, true, i));
  for (int i = 0; i < 20; ++i) logs.push_back(log("kept" + std::to_string(i), kCapMiB, false, 100 + i, false));
  const auto l = limits(4 * kCapMiB, 8 * kCapMiB);
  const auto plan = plan_log_freeing(logs, l, kCapBlock);
  std::uint64_t total = 0;
  for (const auto& use : logs) {
    std::uint64_t left = use.disk_bytes;
    for (const auto& f : plan) {
      if (f.path != use.path) continue;
      left = f.how == LogFreeing::How::kRemove ? 0 : std::min(left, (use.size + kCapBlock - 1) / kCapBlock * kCapBlock - f.keep_from);
    }
    CHECK(left <= l.per_log);
    total += left;
  }
  CHECK(total <= l.per_owner);
}

TEST_CASE("a new helper makes room by forgetting the oldest ended ones") {
  std::vector<HelperAge> helpers{{true, 0}, {false, 30}, {false, 10}, {false, 20}};
  CHECK(make_room_for_helper(helpers, 0).forget.empty());  // no limit
  CHECK(make_room_for_helper(helpers, 5).forget.empty());  // room left
  auto room = make_room_for_helper(helpers, 4);
  CHECK_FALSE(room.refused);
  CHECK(room.forget == std::vector<std::size_t>{2});
  room = make_room_for_helper(helpers, 2);
  CHECK(room.forget == std::vector<std::size_t>{2, 3, 1});
}

TEST_CASE("running helpers are never forgotten: a start past the limit is refused") {
  const std::vector<HelperAge> helpers{{true, 0}, {true, 0}, {false, 5}};
  CHECK(make_room_for_helper(helpers, 2).refused);
  CHECK(make_room_for_helper(helpers, 2).forget.empty());
  CHECK_FALSE(make_room_for_helper(helpers, 3).refused);
}

TEST_CASE("dropped bytes: a punched front is where the kept part begins; emptying adds up") {
  CHECK(dropped_after(0, false, 8192) == 8192);
  CHECK(dropped_after(8192, false, 4096) == 8192);  // never goes back
  CHECK(dropped_after(1000, true, 500) == 1500);
}

TEST_CASE("output a pattern has not read yet is kept, but only up to one cap's worth") {
  // The ready line may be ahead of what lpd read: kept while it fits the cap...
  LogUse waiting = log("starting", 3 * kCapMiB, true);
  waiting.free_limit = 2 * kCapMiB + 10;  // read up to here
  auto plan = plan_log_freeing({waiting}, limits(kCapMiB, 0), kCapBlock);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].keep_from <= 2 * kCapMiB + 10);  // nothing unread is freed
  CHECK(plan[0].keep_from >= 2 * kCapMiB);       // the cap's share, as far as the reader allows
  // ...but a helper writing faster than lpd reads does not fill the disk:
  // past one cap of unread output, its oldest unread output goes.
  LogUse flooding = log("flooding", 5000 * kCapMiB, true);
  flooding.free_limit = 0;  // lpd has read nothing yet
  plan = plan_log_freeing({flooding}, limits(kCapMiB, 0), kCapBlock);
  REQUIRE(plan.size() == 1);
  CHECK(5000 * kCapMiB - plan[0].keep_from <= kCapMiB + kCapBlock);
}
