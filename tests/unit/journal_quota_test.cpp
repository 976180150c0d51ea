// The event journal cap (issue 13, the attack's F2: one user's connection
// wrote 5.2 GB of events in 20 s): JournalQuota's rules, retention by a
// user's journal bytes, and History refusing a run's lines past its limit.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/history/history.h"
#include "daemon/history/journal_quota.h"
#include "daemon/history/retention.h"
#include "daemon/reports/junit_report.h"
#include "tests/unit/history_world.h"

using namespace lpd::daemon;
using nlohmann::json;
using Verdict = JournalQuota::Verdict;

TEST_CASE("a run's lines are refused past its own limit, and counted only when written") {
  JournalQuota quota(JournalLimits{100, 0});
  quota.measured("r1", 1001, 60, /*active=*/true);
  CHECK(quota.admit("r1", 1001, 40) == Verdict::kWrite);  // exactly the limit
  CHECK(quota.run_bytes("r1") == 100);
  CHECK(quota.admit("r1", 1001, 1) == Verdict::kRunFull);
  CHECK(quota.run_bytes("r1") == 100);  // a refused line is not counted
  quota.force("r1", 1001, 30);          // lpd's own note, whatever the limit
  CHECK(quota.run_bytes("r1") == 130);
  // Another run of the same user has a limit of its own.
  CHECK(quota.admit("r2", 1001, 100) == Verdict::kWrite);
  CHECK(quota.owner_bytes(1001) == 230);
}

TEST_CASE("a user's running runs together are refused past the user's limit; ended runs are retention's") {
  JournalQuota quota(JournalLimits{0, 100});
  quota.measured("old", 1001, 500, /*active=*/false);  // an ended run: removable, does not block
  quota.measured("a", 1001, 50, true);
  CHECK(quota.over_owner(1001));  // retention is to remove `old`
  CHECK(quota.owner_active_bytes(1001) == 50);
  CHECK(quota.admit("b", 1001, 50) == Verdict::kWrite);  // 100 active
  CHECK(quota.admit("a", 1001, 1) == Verdict::kOwnerFull);
  CHECK(quota.admit("b", 1001, 1) == Verdict::kOwnerFull);
  // Another user is not touched by it.
  CHECK(quota.admit("c", 1002, 100) == Verdict::kWrite);
  CHECK_FALSE(quota.over_owner(1002));
  // A late line of an ended run is not the running runs' to refuse.
  CHECK(quota.admit("old", 1001, 10) == Verdict::kWrite);
  // `a` ends: the running ones have room again; removing `old` brings the user under.
  quota.ended("a");
  CHECK(quota.owner_active_bytes(1001) == 50);
  CHECK(quota.admit("b", 1001, 50) == Verdict::kWrite);
  quota.forget("old");
  CHECK(quota.owner_bytes(1001) == 150);
  quota.forget("a");
  CHECK(quota.owner_bytes(1001) == 100);
  CHECK_FALSE(quota.over_owner(1001));
  // Measured again (a journal reopened): what the file holds replaces the count.
  quota.measured("b", 1001, 7, true);
  CHECK(quota.owner_bytes(1001) == 7);
}

TEST_CASE("no limit refuses nothing and is never over") {
  JournalQuota quota(JournalLimits{0, 0});
  CHECK(quota.admit("r", 1, std::uint64_t{1} << 50) == Verdict::kWrite);
  CHECK_FALSE(quota.over_owner(1));
}

TEST_CASE("retention removes a user's oldest ended runs while their journals are over the user's bytes") {
  const double now = 100 * 86400.0;
  std::vector<RunAge> runs = {
      {"a1", 1, 2, false, 1001, 40}, {"a2", 3, 4, false, 1001, 40}, {"a3", 5, 0, true, 1001, 40},
      {"a4", 6, 7, false, 1001, 40}, {"b1", 0, 1, false, 1002, 1000},  // another user's: never for 1001's
  };
  RetentionLimits limits{0, 0};
  limits.keep_journal_bytes = 90;
  // 1001: 160 bytes; a1 and a2 go (80 left: a3 active and a4). 1002's one
  // run is over on its own, and stays: an owner's newest run never goes for
  // its bytes (a run that just ended would vanish before its user read it).
  CHECK(runs_to_prune(runs, now, limits) == std::vector<std::string>{"a1", "a2"});
  runs.push_back({"b2", 9, 10, false, 1002, 10});
  CHECK(runs_to_prune(runs, now, limits) == std::vector<std::string>{"b1", "a1", "a2"});
  limits.keep_journal_bytes = 0;
  CHECK(runs_to_prune(runs, now, limits).empty());
  // Only active runs over it: nothing to remove.
  limits.keep_journal_bytes = 10;
  CHECK(runs_to_prune({{"x", 1, 0, true, 1001, 100}}, now, limits).empty());
}

TEST_CASE("results lpd knows it lost make one error testcase, so the report is never green") {
  JunitInput in;
  in.suite_name = "pytest";
  in.runner = "pytest";
  TestResult passed;
  passed.nodeid = "t.py::test_a";
  passed.outcome = "passed";
  passed.phase = "call";
  in.results.push_back(passed);
  const std::string green = junit_report(in);
  CHECK(green.find("errors=\"0\"") != std::string::npos);
  in.results_missing = "lpd kept no more of the events of this run";
  const std::string red = junit_report(in);
  CHECK(red.find("errors=\"1\"") != std::string::npos);
  CHECK(red.find("name=\"results not kept\"") != std::string::npos);
  CHECK(red.find("message=\"lpd kept no more of the events of this run\"") != std::string::npos);
}

namespace {

std::vector<json> lines_of(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

}  // namespace

TEST_CASE("a run's events past its journal limit are in neither journal; the journal says so, and ends") {
  HistoryWorld world("lpd-journal-quota");
  auto& [dir, io, events, store, runs] = world;
  const std::string run_id = "20261202-170000-aaaaaa";
  Run run;
  run.run_id = run_id;
  run.owner = 1001;
  runs.restore(run);
  std::vector<std::string> live;
  events.subscribe([&](const Event& e) {
    if (e.run_id == run_id) live.push_back(e.type);
  });
  History history(io, events, store, runs, RetentionLimits{0, 0}, nullptr, JournalLimits{2000, 0});
  history.open();
  const std::string nodeid_pad(100, 'x');
  for (int i = 0; i < 40; ++i)
    events.publish_text("test.finish", R"({"nodeid":"t.py::)" + nodeid_pad + std::to_string(i) + R"(","outcome":"passed"})",
                        run_id, 1001);
  io.run();  // the note is published on the next turn of the loop
  io.restart();
  runs.end(run_id, 2.0);
  events.publish_text("run.ended", R"({"reason":"done"})", run_id, 1001);
  history.stop();

  // Every event was sent live, the note too.
  CHECK(std::count(live.begin(), live.end(), "test.finish") == 40);
  CHECK(std::count(live.begin(), live.end(), std::string(RunJournal::kEventsNotKept)) == 1);

  const auto journal = lines_of(dir.path + "/runs/" + run_id + "/events.jsonl");
  std::size_t finishes = 0, notes = 0;
  for (const auto& line : journal) {
    if (line["event"] == "test.finish") ++finishes;
    if (line["event"] == RunJournal::kEventsNotKept) {
      ++notes;
      CHECK(line["limit"] == 2000);
      CHECK(line["reason"] == "run");
    }
  }
  CHECK(finishes > 0);
  CHECK(finishes < 40);
  CHECK(notes == 1);
  CHECK(journal.back()["event"] == "run.ended");  // whatever the limit
  CHECK(std::filesystem::file_size(dir.path + "/runs/" + run_id + "/events.jsonl") < 2000 + 1000);
  // The events journal holds the same: no copy of a refused line.
  std::size_t logged = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path + "/events"))
    if (entry.path().extension() == ".jsonl")
      for (const auto& line : lines_of(entry.path()))
        if (line["event"] == "test.finish") ++logged;
  CHECK(logged == finishes);
}

TEST_CASE("soon after start, a user over the journal bytes loses their oldest ended runs; another user's stay") {
  HistoryWorld world("lpd-journal-quota-start");
  auto& [dir, io, events, store, runs] = world;
  auto seed = [&](const std::string& run_id, uid_t owner, double created, std::size_t bytes) {
    std::filesystem::create_directories(dir.path + "/runs/" + run_id);
    std::ofstream(dir.path + "/runs/" + run_id + "/events.jsonl") << std::string(bytes - 1, 'x') << "\n";
    Run run;
    run.run_id = run_id;
    run.owner = owner;
    run.created_at = created;
    run.active = false;
    run.ended_at = created + 1;
    runs.restore(run);
  };
  seed("20261202-170001-aaaaa1", 1001, 1, 100'000);
  seed("20261202-170002-aaaaa2", 1001, 2, 100'000);
  seed("20261202-170003-aaaaa3", 1001, 3, 100'000);
  seed("20261202-170000-bbbbb1", 1002, 0, 250'000);  // alone over it: its only run, ended
  History history(io, events, store, runs, RetentionLimits{0, 0}, nullptr, JournalLimits{0, 150'000});
  history.open();
  history.start();
  // Measured with the first compaction, after the first clients are
  // answered: until then only count and age apply.
  CHECK(runs.find("20261202-170001-aaaaa1"));
  while (runs.find("20261202-170001-aaaaa1") && io.run_one() > 0) {
  }
  CHECK_FALSE(runs.find("20261202-170001-aaaaa1"));
  CHECK_FALSE(runs.find("20261202-170002-aaaaa2"));
  CHECK(runs.find("20261202-170003-aaaaa3"));
  CHECK(runs.find("20261202-170000-bbbbb1"));  // its only run: over on its own, but the newest
  CHECK_FALSE(std::filesystem::exists(dir.path + "/runs/20261202-170001-aaaaa1"));
  CHECK(std::filesystem::exists(dir.path + "/runs/20261202-170003-aaaaa3/events.jsonl"));
  history.stop();
}

TEST_CASE("a user's events of no run may take the user's bytes within the keep window, then are refused") {
  JournalLimits limits{0, 1000};
  limits.runless_window_seconds = 2 * 3600.0;
  JournalQuota quota(limits);
  const double t0 = 1000 * 3600.0;
  CHECK(quota.admit_runless(1001, 600, t0) == Verdict::kWrite);
  CHECK(quota.admit_runless(1001, 400, t0 + 60) == Verdict::kWrite);  // exactly the limit
  CHECK(quota.admit_runless(1001, 1, t0 + 120) == Verdict::kOwnerFull);
  CHECK(quota.admit_runless(1002, 1000, t0) == Verdict::kWrite);  // another user's own budget
  // Hours that left the window (journal compaction removes them by age) free the budget.
  CHECK(quota.admit_runless(1001, 1, t0 + 2 * 3600.0) == Verdict::kOwnerFull);  // t0's hour still inside
  CHECK(quota.admit_runless(1001, 1000, t0 + 3 * 3600.0 + 1) == Verdict::kWrite);
  // Runs' journals are not this budget.
  CHECK(quota.owner_bytes(1001) == 0);
  // No per-owner limit: never refused.
  JournalQuota unlimited(JournalLimits{0, 0});
  CHECK(unlimited.admit_runless(1, std::uint64_t{1} << 40, t0) == Verdict::kWrite);
}
