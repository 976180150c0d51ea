// h14logcap: freeing the front of a log in place, and readers skipping what
// was freed (on the file system the tests run on; skipped where it cannot
// punch holes).

#include <catch2/catch.hpp>

#include "tests/unit/temp_append_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "daemon/logs/log_cap.h"
#include "daemon/logs/log_file.h"

using namespace lpd::daemon;

namespace {

/// TempAppendLog named h.1.log.
struct CapLog : TempAppendLog {
  CapLog() : TempAppendLog("h.1.log") {}
};

}  // namespace

TEST_CASE("freeing a log's front keeps its size and newest lines, and the writer appends on") {
  CapLog log;
  log.write_lines(0, 20000);  // about 2 MiB
  ::fsync(log.writer);
  const auto before = measure_log(log.path);
  REQUIRE(before);
  const std::uint64_t block = log_block_size(log.dir);
  const std::uint64_t keep_from = (before->size / 2) / block * block;
  const FrontFreed freed = free_log_front(log.path, keep_from);
  if (freed.truncated) {
    WARN("this file system cannot punch holes: not checked");
    return;
  }
  CHECK(freed.bytes == keep_from);
  const auto after = measure_log(log.path);
  REQUIRE(after);
  CHECK(after->size == before->size);
  CHECK(after->kept_from == keep_from);
  CHECK(after->disk_bytes <= before->size - keep_from + block);

  // A reader of the last lines never steps into the freed front.
  CHECK(offset_of_last_lines(log.path, 1'000'000, after->size) == keep_from);
  CHECK(first_kept_offset(log.path) == keep_from);
  const int reader = ::open(log.path.c_str(), O_RDONLY | O_CLOEXEC);
  CHECK(next_data_offset(reader, 0) == keep_from);
  CHECK(next_data_offset(reader, keep_from + 10) == keep_from + 10);

  // The helper's next write lands at the end, as before.
  log.write_lines(20000, 1);
  const auto grown = measure_log(log.path);
  REQUIRE(grown);
  CHECK(grown->size > before->size);
  std::string last(200, '\0');
  const auto n = ::pread(reader, last.data(), last.size(), static_cast<off_t>(grown->size - 150));
  CHECK(n == 150);
  CHECK(std::string(last.data(), 150).find("line 20000") != std::string::npos);
  ::close(reader);
}

TEST_CASE("a log freed whole reads as empty from its end") {
  CapLog log;
  log.write_lines(0, 100);
  const auto use = measure_log(log.path);
  REQUIRE(use);
  const std::uint64_t block = log_block_size(log.dir);
  const FrontFreed freed = free_log_front(log.path, (use->size + block - 1) / block * block);
  if (freed.truncated) {
    WARN("this file system cannot punch holes: not checked");
    return;
  }
  CHECK(first_kept_offset(log.path) == use->size);
  CHECK(offset_of_last_lines(log.path, 10, use->size) == use->size);
}

TEST_CASE("a link where a log should be is never freed through") {
  CapLog log;
  const std::string link = log.dir + "/link.log";
  REQUIRE(::symlink(log.path.c_str(), link.c_str()) == 0);
  CHECK_THROWS(free_log_front(link, 4096));
  CHECK_FALSE(measure_log(link));
  ::unlink(link.c_str());
}

// h13tail (issue 13, found by a full run under load): at a log's end
// SEEK_DATA says "nothing here" (ENXIO); taking the size after it skipped
// whatever the writer appended in between. Only a hole the size still
// covers when SEEK_DATA is asked again is skipped.
TEST_CASE("next_data_offset skips a hole to the end, never the end of a log being written") {
  CapLog log;
  log.write_lines(0, 10);
  const auto use = measure_log(log.path);
  REQUIRE(use);
  const int reader = ::open(log.path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(reader >= 0);
  CHECK(next_data_offset(reader, use->size) == use->size);       // at the end: stays there
  CHECK(next_data_offset(reader, use->size + 50) == use->size + 50);  // past it: stays too
  log.write_lines(10, 5);  // the writer appends
  CHECK(next_data_offset(reader, use->size) == use->size);       // the new bytes are data: read them
  const auto grown = measure_log(log.path);
  REQUIRE(grown);
  // A hole to the end (a log emptied by the cap, or extended by truncate): skipped.
  REQUIRE(::truncate(log.path.c_str(), static_cast<off_t>(grown->size + 1024 * 1024)) == 0);
  const std::uint64_t end = grown->size + 1024 * 1024;
  if (::lseek(reader, 0, SEEK_HOLE) == static_cast<off_t>(end)) {
    WARN("this file system reports no holes: not checked");
  } else {
    // Holes are whole blocks: the one after the last written block.
    const std::uint64_t block = log_block_size(log.dir);
    const std::uint64_t hole_from = (grown->size + block - 1) / block * block;
    CHECK(next_data_offset(reader, hole_from) == end);
  }
  ::close(reader);
}
