// Ring marks (RingMark, LastBatchMarks, RunJournal's marks): what keeps a
// restarted lpd from recording a ring's last records twice.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "daemon/history/history.h"
#include "daemon/history/ring_mark.h"
#include "tests/unit/history_world.h"

using namespace lpd::daemon;

namespace {

std::string mark_line(std::uint64_t ring_id, std::uint64_t to, std::uint64_t batch) {
  std::string out;
  append_ring_mark_line(out, RingMark{ring_id, to, batch});
  return out;
}

/// The mark's line without its newline, as a reader of lines sees it.
std::string mark_text(std::uint64_t ring_id, std::uint64_t to, std::uint64_t batch) {
  std::string line = mark_line(ring_id, to, batch);
  line.pop_back();
  return line;
}

std::vector<std::string> file_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("a ring mark line reads back as written, and nothing else reads as one") {
  const std::string line = mark_line(0xfedcba9876543210ull, 123456789, 42);
  CHECK(line == "{\"event\":\"lpd.ring_read\",\"ring\":\"fedcba9876543210\",\"to\":123456789,\"batch\":42}\n");
  const auto mark = parse_ring_mark(std::string_view(line).substr(0, line.size() - 1));
  REQUIRE(mark);
  CHECK(mark->ring_id == 0xfedcba9876543210ull);
  CHECK(mark->read_to == 123456789);
  CHECK(mark->batch == 42);
  CHECK(parse_ring_mark(mark_text(1, 0, 1))->ring_id == 1);

  for (std::string_view other : {
           std::string_view(R"({"event":"lpd.ring_read","ring":"fedcba9876543210","to":1,"batch":2)"),            // torn
           std::string_view(R"({"event":"lpd.ring_read","ring":"fedcba987654321","to":1,"batch":2})"),             // 15 digits
           std::string_view(R"({"event":"lpd.ring_read","ring":"fedcba987654321x","to":1,"batch":2})"),
           std::string_view(R"({"event":"lpd.ring_read","ring":"fedcba9876543210","to":-1,"batch":2})"),
           std::string_view(R"({"event":"lpd.ring_read","ring":"fedcba9876543210","to":1,"batch":2,"x":3})"),
           std::string_view(R"({"event":"test.finish","ring_read":"fedcba9876543210","to":1,"batch":2})"),
           std::string_view(R"({"nodeid":"t.py::a","event":"test.start","seq":1})"),
           std::string_view(""),
       })
    CHECK_FALSE(parse_ring_mark(other));
}

TEST_CASE("the last batch's marks are kept, the furthest per ring, and the scan stops at an earlier batch") {
  LastBatchMarks marks;
  // Fed from the end of the journal backwards.
  CHECK(marks.feed(R"({"nodeid":"t.py::torn","eve)"));  // a torn tail
  CHECK(marks.feed(mark_text(7, 300, 9)));
  CHECK(marks.feed(R"({"nodeid":"t.py::c","event":"test.finish","seq":9})"));
  CHECK(marks.feed(mark_text(8, 80, 9)));
  CHECK(marks.feed(mark_text(7, 250, 9)));  // the same ring twice in a batch: the furthest counts
  CHECK_FALSE(marks.feed(mark_text(7, 200, 8)));  // the batch before: stop
  CHECK(marks.marks() == std::map<std::uint64_t, std::uint64_t>{{7, 300}, {8, 80}});
}

TEST_CASE("a run journal marks each ring read in the runs it recorded events of, and a restart reads the last batch back") {
  HistoryWorld world("lpd-ring-marks");
  auto& [dir, io, events, store, runs] = world;
  const std::string run_a = "20261201-101553-000aaa", run_b = "20261201-101553-000bbb";
  {
    History history(io, events, store, runs, RetentionLimits{0, 0});
    history.open();
    auto& journal = history.journal();
    // Batch 1: ring 5 records an event of run A.
    journal.ring_read_begins();
    events.publish_text("test.finish", R"({"nodeid":"t.py::a","outcome":"passed"})", run_a, 0);
    journal.ring_read_ended(5, 100);
    journal.end_batch();
    // Batch 2: ring 5 again, ring 6 with events of both runs, ring 7 with none.
    journal.ring_read_begins();
    events.publish_text("test.finish", R"({"nodeid":"t.py::b","outcome":"passed"})", run_a, 0);
    journal.ring_read_ended(5, 200);
    journal.ring_read_begins();
    events.publish_text("test.start", R"({"nodeid":"t.py::c"})", run_a, 0);
    events.publish_text("test.start", R"({"nodeid":"t.py::x"})", run_b, 0);
    journal.ring_read_ended(6, 60);
    journal.ring_read_begins();
    journal.ring_read_ended(7, 70);
    journal.end_batch();
    // An event from the socket afterwards: no mark.
    events.publish_text("test.finish", R"({"nodeid":"t.py::c","outcome":"passed"})", run_a, 0);
    history.stop();
  }
  const auto lines_a = file_lines(dir.path + "/runs/" + run_a + "/events.jsonl");
  REQUIRE(lines_a.size() == 7);
  CHECK(parse_ring_mark(lines_a[1])->read_to == 100);
  CHECK(parse_ring_mark(lines_a[1])->batch == 1);
  CHECK(parse_ring_mark(lines_a[3])->read_to == 200);
  CHECK(parse_ring_mark(lines_a[5])->ring_id == 6);
  CHECK(parse_ring_mark(lines_a[5])->batch == 2);
  CHECK_FALSE(parse_ring_mark(lines_a[6]));
  const auto lines_b = file_lines(dir.path + "/runs/" + run_b + "/events.jsonl");
  REQUIRE(lines_b.size() == 2);
  CHECK(parse_ring_mark(lines_b[1])->ring_id == 6);

  // The next lpd: the last batch of each active run.
  History restarted(io, events, store, runs, RetentionLimits{0, 0});
  restarted.open();
  restarted.journal().recall_ring_marks({{run_a, 1000}, {run_b, 1000}, {"20261201-101553-000ccc", 1000} /* no journal */});
  CHECK_FALSE(restarted.journal().take_journaled_to(5, 1001));  // another user's process naming the ring
  CHECK(restarted.journal().take_journaled_to(5, 1000) == std::optional<std::uint64_t>(200));
  CHECK(restarted.journal().take_journaled_to(6, 1000) == std::optional<std::uint64_t>(60));
  CHECK_FALSE(restarted.journal().take_journaled_to(7, 1000));  // read, but recorded nothing
  CHECK_FALSE(restarted.journal().take_journaled_to(5, 1000));  // asked once
}

TEST_CASE("ring marks are not read through a link planted for a run's journal") {
  HistoryWorld world("lpd-ring-marks-link");
  auto& [dir, io, events, store, runs] = world;
  const std::string run_id = "20261201-101553-000ddd";
  std::filesystem::create_directories(dir.path + "/runs/" + run_id);
  const std::string elsewhere = dir.path + "/elsewhere.jsonl";
  std::ofstream(elsewhere) << mark_line(9, 90, 1);
  REQUIRE(::symlink(elsewhere.c_str(), (dir.path + "/runs/" + run_id + "/events.jsonl").c_str()) == 0);
  History history(io, events, store, runs, RetentionLimits{0, 0});
  history.open();
  history.journal().recall_ring_marks({{run_id, 1000}});
  CHECK_FALSE(history.journal().take_journaled_to(9, 1000));
}

TEST_CASE("ring marks are found behind a last batch of lines longer than a read block") {
  HistoryWorld world("lpd-ring-marks-long");
  auto& [dir, io, events, store, runs] = world;
  const std::string run_id = "20261201-101553-000eee";
  std::filesystem::create_directories(dir.path + "/runs/" + run_id);
  {
    std::ofstream out(dir.path + "/runs/" + run_id + "/events.jsonl", std::ios::binary);
    out << mark_line(3, 30, 1);
    out << mark_line(4, 40, 2);
    out << "{\"event\":\"test.finish\",\"longrepr\":\"" << std::string(200000, 'x') << "\"}\n";
    out << mark_line(3, 35, 2);
    out << "{\"event\":\"test.finish\",\"longrepr\":\"" << std::string(100000, 'y') << "\"}\n";
  }
  History history(io, events, store, runs, RetentionLimits{0, 0});
  history.open();
  history.journal().recall_ring_marks({{run_id, 1000}});
  CHECK(history.journal().take_journaled_to(3, 1000) == std::optional<std::uint64_t>(35));
  CHECK(history.journal().take_journaled_to(4, 1000) == std::optional<std::uint64_t>(40));
}

TEST_CASE("a run's journal ends with its run.ended: a ring read that ended the run marks nothing after it") {
  HistoryWorld world("lpd-ring-marks-end");
  auto& [dir, io, events, store, runs] = world;
  const std::string run_id = "20261201-101553-000fff";
  {
    History history(io, events, store, runs, RetentionLimits{0, 0});
    history.open();
    auto& journal = history.journal();
    journal.ring_read_begins();
    events.publish_text("test.finish", R"({"nodeid":"t.py::a","outcome":"passed"})", run_id, 0);
    events.publish_text("run.ended", R"({"status":"ended"})", run_id, 0);
    journal.ring_read_ended(5, 100);
    journal.end_batch();
    history.stop();
  }
  const auto lines = file_lines(dir.path + "/runs/" + run_id + "/events.jsonl");
  REQUIRE(lines.size() == 2);
  CHECK(nlohmann::json::parse(lines.back())["event"] == "run.ended");
}
