// h13out (issue 13): the run output cap: the shared log cap rules with a
// kept head, how a reader is told about a gap, the excerpt's note, and
// freeing the middle of a file in place (on the file system the tests run
// on; skipped where it cannot punch holes).

#include <catch2/catch.hpp>

#include "tests/unit/temp_append_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "daemon/logs/log_cap.h"
#include "daemon/logs/log_cap_rules.h"
#include "daemon/jobs/run_output_cap.h"
#include "daemon/jobs/run_output_rules.h"

using namespace lpd::daemon;

namespace {

constexpr std::uint64_t kOutputBlock = 4096;
constexpr std::uint64_t kOutputMiB = 1024 * 1024;

LogUse output(std::string path, std::uint64_t size, bool live, std::int64_t written_at = 0) {
  LogUse use;
  use.path = std::move(path);
  use.size = size;
  use.disk_bytes = (size + kOutputBlock - 1) / kOutputBlock * kOutputBlock;
  use.live = live;
  use.current = true;
  use.written_at = written_at;
  return use;
}

LogCaps caps(std::uint64_t per_log, std::uint64_t per_owner, std::uint64_t head) { return {per_log, per_owner, head}; }

}  // namespace

TEST_CASE("run output caps keep an eighth of the per-run cap as head, at most 1 MiB, in whole blocks") {
  RunOutputLimits limits;
  CHECK(run_output_caps(limits, kOutputBlock).keep_head == kOutputMiB);  // 64 MiB default
  CHECK(run_output_caps(limits, kOutputBlock).per_log == 64 * kOutputMiB);
  CHECK(run_output_caps(limits, kOutputBlock).per_owner == 1024 * kOutputMiB);
  limits.per_run = kOutputMiB;
  CHECK(run_output_caps(limits, kOutputBlock).keep_head == kOutputMiB / 8);
  limits.per_run = 100 * 1000;  // 12500 bytes: cut to whole blocks
  CHECK(run_output_caps(limits, kOutputBlock).keep_head == 12288);
  limits.per_run = 0;  // no per-run cap: the head comes from the user's total
  limits.per_owner = 4 * kOutputMiB;
  CHECK(run_output_caps(limits, kOutputBlock).keep_head == kOutputMiB / 2);
}

TEST_CASE("a run output over its cap keeps its head and its newest half-cap; the middle is freed") {
  const auto plan = plan_log_freeing({output("o", 10 * kOutputMiB + 100, true)}, caps(kOutputMiB, 0, kOutputMiB / 8), kOutputBlock);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].how == LogFreeing::How::kDropFront);
  CHECK(plan[0].from == kOutputMiB / 8);
  CHECK(plan[0].keep_from % kOutputBlock == 0);
  CHECK(10 * kOutputMiB + 100 - plan[0].keep_from <= kOutputMiB / 2 + kOutputBlock);
  CHECK(10 * kOutputMiB + 100 - plan[0].keep_from >= kOutputMiB / 2);
  // Helper logs (no head) are cut from 0, as before.
  const auto helper = plan_log_freeing({output("h", 10 * kOutputMiB + 100, true)}, caps(kOutputMiB, 0, 0), kOutputBlock);
  REQUIRE(helper.size() == 1);
  CHECK(helper[0].from == 0);
  CHECK(helper[0].keep_from == plan[0].keep_from);
}

TEST_CASE("a cut run output is judged by its disk use, head included") {
  LogUse cut = output("o", 10 * kOutputMiB, true);
  cut.kept_from = 10 * kOutputMiB - kOutputMiB / 2;
  cut.disk_bytes = kOutputMiB / 8 + kOutputMiB / 2;  // head + newest half
  CHECK(plan_log_freeing({cut}, caps(kOutputMiB, 0, kOutputMiB / 8), kOutputBlock).empty());
  cut.size += kOutputMiB;  // grew on: head + 1.5 MiB on disk, over the cap
  cut.disk_bytes += kOutputMiB;
  const auto plan = plan_log_freeing({cut}, caps(kOutputMiB, 0, kOutputMiB / 8), kOutputBlock);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].from == kOutputMiB / 8);
  CHECK(plan[0].keep_from > cut.kept_from);
  CHECK(cut.size - plan[0].keep_from <= kOutputMiB / 2 + kOutputBlock);
}

TEST_CASE("over the user's total, ended outputs are emptied whole, head too, oldest first") {
  // 3 ended outputs of 1 MiB and a live one of 1 MiB, a 3 MiB total.
  std::vector<LogUse> logs{output("old", kOutputMiB, false, 1), output("mid", kOutputMiB, false, 2),
                           output("new", kOutputMiB, false, 3), output("live", kOutputMiB, true, 4)};
  const auto plan = plan_log_freeing(logs, caps(8 * kOutputMiB, 3 * kOutputMiB, kOutputMiB / 8), kOutputBlock);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].path == "old");
  CHECK(plan[0].how == LogFreeing::How::kDropFront);  // a run's output is named by run.info: never removed
  CHECK(plan[0].from == 0);
  CHECK(plan[0].keep_from == kOutputMiB);
}

TEST_CASE("live outputs alone over the user's total share half of it, each with a smaller head") {
  std::vector<LogUse> logs{output("a", 4 * kOutputMiB, true), output("b", 4 * kOutputMiB, true)};
  const auto plan = plan_log_freeing(logs, caps(0, 4 * kOutputMiB, kOutputMiB), kOutputBlock);
  REQUIRE(plan.size() == 2);
  for (const auto& f : plan) {
    // A share of 1 MiB each: a head of at most half of it, the rest newest output.
    CHECK(f.from == kOutputMiB / 2);
    CHECK(f.from + (4 * kOutputMiB - f.keep_from) <= kOutputMiB + kOutputBlock);
  }
}

TEST_CASE("a reader following on sees no note; one that jumps a gap is told how many bytes") {
  OutputGaps gaps(0);
  CHECK(gaps.before("abc\n", 4).empty());
  CHECK(gaps.before("def", 7).empty());
  // Next chunk starts at 1007: 1000 bytes were freed; the last chunk ended mid-line.
  const std::string note = gaps.before("xyz\n", 1011);
  CHECK(note == "\n" + dropped_output_note(1000));
  CHECK(note.find("1000 bytes of this run's output were dropped") != std::string::npos);
  CHECK(gaps.skipped() == 1000);
  CHECK(gaps.before("more\n", 1016).empty());
  CHECK(gaps.before("late\n", 2021) == dropped_output_note(1000));  // at a line start: no extra newline
  CHECK(gaps.skipped() == 2000);
  // A log emptied where holes cannot be punched starts again at 0: no gap (the log says it itself).
  CHECK(gaps.before("again\n", 6).empty());
  CHECK(gaps.skipped() == 2000);
}

TEST_CASE("a replay from an offset inside the freed part starts with the note") {
  OutputGaps gaps(10);
  CHECK(gaps.before("tail\n", 5000) == dropped_output_note(4985));
}

TEST_CASE("an excerpt says what it leaves out and what the cap dropped") {
  CHECK(excerpt_note(0, 0).empty());
  const std::string cut = excerpt_note(500, 0);
  CHECK(cut.find("first 500 bytes of the output are not shown") != std::string::npos);
  CHECK(cut.find("dropped") == std::string::npos);
  const std::string dropped = excerpt_note(100, 4000);
  CHECK(dropped.find("first 4100 bytes") != std::string::npos);
  CHECK(dropped.find("4000 of them were dropped") != std::string::npos);
  CHECK(dropped.back() == '\n');
}

namespace {

/// TempAppendLog named output.log.
struct TempOutput : TempAppendLog {
  TempOutput() : TempAppendLog("output.log") {}
};

}  // namespace

TEST_CASE("freeing a run output's middle keeps its head, its size and its newest lines") {
  TempOutput out;
  out.write_lines(0, 20000);  // about 2 MiB
  const std::uint64_t block = log_block_size(out.dir);
  const auto whole = log_parts(out.path);
  REQUIRE(whole);
  CHECK(whole->dropped() == 0);
  CHECK(whole->head_end == whole->size);
  const std::uint64_t head = 4 * block;
  const std::uint64_t keep_from = (whole->size / 2) / block * block;
  const FrontFreed freed = free_log_range(out.path, head, keep_from);
  if (freed.truncated) {
    WARN("this file system cannot punch holes: not checked");
    return;
  }
  const auto parts = log_parts(out.path);
  REQUIRE(parts);
  CHECK(parts->size == whole->size);
  CHECK(parts->head_end == head);
  CHECK(parts->kept_from == keep_from);
  CHECK(parts->dropped() == keep_from - head);
  CHECK(parts->disk_bytes < whole->disk_bytes);
  const auto use = measure_log(out.path, head);
  REQUIRE(use);
  CHECK(use->kept_from == keep_from);
  // The writer appends on; the excerpt is the newest output, with the note.
  out.write_lines(20000, 1);
  const auto excerpt = run_output_excerpt(out.path, 4096);
  REQUIRE(excerpt);
  CHECK(excerpt->size() <= 4096);
  CHECK(excerpt->find('\0') == std::string::npos);
  CHECK(excerpt->rfind("line 20000 ", std::string::npos) != std::string::npos);
  CHECK(excerpt->find("were dropped when the log passed its size cap") != std::string::npos);
  CHECK(excerpt->find(std::to_string(keep_from - head) + " of them") != std::string::npos);
}

TEST_CASE("a whole small run output is its own excerpt, with no note") {
  TempOutput out;
  out.write_lines(0, 3);
  const auto excerpt = run_output_excerpt(out.path, 64 * 1024);
  REQUIRE(excerpt);
  CHECK(excerpt->rfind("line 0 ", 0) == 0);
  CHECK(excerpt->find("[lpd:") == std::string::npos);
  CHECK(!run_output_excerpt(out.dir + "/missing.log", 100));
}
