// CrashStore (issue 13): crashes.jsonl loaded once, indexed, paged, compacted.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "daemon/crashes/crash_store.h"
#include "tests/unit/temp_dir.h"

using lpd::daemon::Crash;
using lpd::daemon::CrashStore;
using lpd::daemon::StateStore;

namespace {

/// A fresh state directory and its crash journal's text.
struct TempState {
  TempDir dir{"lpd-crash-store"};
  const std::string& root = dir.path;
  std::string journal() const { return root + "/crashes.jsonl"; }
  std::string text() const {
    std::ifstream in(journal());
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  void write(const std::string& text) const {
    std::ofstream out(journal(), std::ios::binary | std::ios::app);
    out << text;
  }
  std::size_t lines() const {
    const std::string t = text();
    return static_cast<std::size_t>(std::count(t.begin(), t.end(), '\n'));
  }
};

/// A fresh state directory and the StateStore on it, where each case
/// opens (and reopens, as lpd does at a restart) its CrashStore.
struct StateDir {
  TempState dir;
  StateStore store{dir.root};
};

Crash stored_crash(const std::string& run_id, pid_t pid, const std::string& nodeid = "t.py::test", int attempt = 1,
            std::size_t traceback_bytes = 100) {
  Crash c;
  c.run_id = run_id;
  c.pid = pid;
  c.nodeid = nodeid;
  c.attempt = attempt;
  c.where = "test";
  c.signal = 11;
  c.reason = "killed by SIGSEGV";
  c.traceback = std::string(traceback_bytes, 'x');
  c.owner = 1000;
  return c;
}

std::vector<std::uint64_t> ids(const std::vector<const Crash*>& crashes) {
  std::vector<std::uint64_t> out;
  for (const Crash* c : crashes) out.push_back(c->crash_id);
  return out;
}

}  // namespace

TEST_CASE_METHOD(StateDir, "crash ids increase and survive a restart, one line per record") {
  {
    CrashStore crashes(store);
    crashes.load();
    CHECK(crashes.append(stored_crash("r1", 10)).crash_id == 1);
    CHECK(crashes.append(stored_crash("r1", 11)).crash_id == 2);
    CHECK(crashes.append(stored_crash("r2", 12)).crash_id == 3);
  }
  CHECK(dir.lines() == 3);
  CrashStore again(store);
  const auto report = again.load();
  CHECK(report.records == 3);
  CHECK(report.renumbered == 0);
  CHECK(ids(again.of_run("r1")) == std::vector<std::uint64_t>{1, 2});
  CHECK(again.append(stored_crash("r2", 13)).crash_id == 4);
  REQUIRE(again.find(4) != nullptr);
  CHECK(again.find(4)->pid == 13);
}

TEST_CASE_METHOD(StateDir, "the same crash heard twice is recorded once, also after a restart") {
  {
    CrashStore crashes(store);
    crashes.load();
    const Crash& first = crashes.append(stored_crash("r1", 10, "t.py::a"));
    Crash again = stored_crash("r1", 10, "t.py::a");
    again.crash_time = 99;  // heard later: still the same death
    CHECK(crashes.find_same(again) == &first);
    CHECK(crashes.append(again).crash_id == first.crash_id);
    // Another attempt, pid or test is another crash.
    CHECK(crashes.append(stored_crash("r1", 10, "t.py::a", 2)).crash_id == 2);
    CHECK(crashes.append(stored_crash("r1", 11, "t.py::a")).crash_id == 3);
    CHECK(crashes.append(stored_crash("r1", 10, "t.py::b")).crash_id == 4);
  }
  CrashStore restarted(store);
  restarted.load();
  CHECK(restarted.append(stored_crash("r1", 10, "t.py::a")).crash_id == 1);
  CHECK(restarted.size() == 4);
  CHECK(dir.lines() == 4);
}

TEST_CASE_METHOD(StateDir, "pages go oldest first by count, by run, and never past the byte budget") {
  CrashStore crashes(store);
  crashes.load();
  for (int i = 0; i < 25; ++i) crashes.append(stored_crash(i % 2 ? "odd" : "even", 100 + i));

  auto page = crashes.page(0, 10);
  CHECK(ids(page.crashes) == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  REQUIRE(page.next);
  CHECK(*page.next == 10);
  page = crashes.page(*page.next, 10);
  CHECK(page.crashes.front()->crash_id == 11);
  page = crashes.page(*page.next, 10);
  CHECK(ids(page.crashes) == std::vector<std::uint64_t>{21, 22, 23, 24, 25});
  CHECK_FALSE(page.next);
  // A last page exactly full says there is nothing after it.
  CHECK_FALSE(crashes.page(15, 10).next);
  CHECK(crashes.page(25, 10).crashes.empty());

  page = crashes.page(0, 5, "odd");
  CHECK(ids(page.crashes) == std::vector<std::uint64_t>{2, 4, 6, 8, 10});
  page = crashes.page(*page.next, 100, "odd");
  CHECK(page.crashes.size() == 7);
  CHECK_FALSE(page.next);
  CHECK(crashes.page(0, 10, "nobody").crashes.empty());

  // Bytes: records of ~4 KiB under a 10 KiB budget go two at a time.
  TempState big_dir;
  StateStore big_store(big_dir.root);
  CrashStore big(big_store);
  big.load();
  for (int i = 0; i < 5; ++i) big.append(stored_crash("r", 200 + i, "t.py::test", 1, 4096));
  page = big.page(0, 100, {}, 10 * 1024);
  CHECK(page.crashes.size() == 2);
  REQUIRE(page.next);
  CHECK(*page.next == 2);
  // One record larger than the budget still makes progress.
  page = big.page(0, 100, {}, 100);
  CHECK(page.crashes.size() == 1);
  CHECK(*page.next == 1);
}

TEST_CASE_METHOD(StateDir, "a default page of records with 64 KiB tracebacks stays under the protocol limit") {
  CrashStore crashes(store);
  crashes.load();
  for (int i = 0; i < 40; ++i) crashes.append(stored_crash("r", 300 + i, "t.py::test", 1, 64 * 1024));
  std::size_t total = 0, pages = 0;
  std::uint64_t after = 0;
  for (;;) {
    auto page = crashes.page(after, CrashStore::kMaxPageLimit);
    std::size_t bytes = 0;
    for (const Crash* c : page.crashes) bytes += c->to_json().dump().size() + 1;
    CHECK(bytes <= CrashStore::kPageBytes);
    total += page.crashes.size();
    ++pages;
    if (!page.next) break;
    after = *page.next;
  }
  CHECK(total == 40);
  CHECK(pages >= 5);
}

TEST_CASE_METHOD(StateDir, "forget_runs compacts the journal; ids are never given again") {
  {
    CrashStore crashes(store);
    crashes.load();
    crashes.append(stored_crash("keep", 1));
    crashes.append(stored_crash("drop", 2));
    crashes.append(stored_crash("keep", 3));
    crashes.append(stored_crash("drop", 4));  // the newest: its id must not come back
    crashes.forget_runs({"drop", "never-seen"});
    CHECK(crashes.size() == 2);
    CHECK(crashes.of_run("drop").empty());
    CHECK(crashes.find_same(stored_crash("drop", 2)) == nullptr);
    CHECK(dir.lines() == 2);
    CHECK(dir.text().find("\"drop\"") == std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.journal() + ".new"));
  }
  CrashStore restarted(store);
  CHECK(restarted.load().records == 2);
  CHECK(ids(restarted.of_run("keep")) == std::vector<std::uint64_t>{1, 3});
  CHECK(restarted.append(stored_crash("new", 5)).crash_id == 5);
  // The same death as a forgotten one is a new record now (its run is gone).
  CHECK(restarted.append(stored_crash("drop", 2)).crash_id == 6);
}

TEST_CASE("a compaction is due once forgotten records are a third of the file, the file is small, or an hour passed") {
  using std::chrono::hours;
  using std::chrono::seconds;
  const std::size_t mib = 1u << 20;
  CHECK_FALSE(crash_compaction_due(0, 40 * mib, hours(5)));  // nothing forgotten
  CHECK(crash_compaction_due(10, mib, seconds(0)));          // small: cheap
  CHECK_FALSE(crash_compaction_due(4400, 44 * mib, seconds(1)));  // one run's record of 10,000: later
  CHECK(crash_compaction_due(22 * mib, 44 * mib, seconds(1)));    // a third of the file
  CHECK_FALSE(crash_compaction_due(21 * mib, 44 * mib, seconds(3599)));
  CHECK(crash_compaction_due(4400, 44 * mib, hours(1)));
}

// The attack: at the retention limit every run end removed a run, and each
// removal rewrote all of a 44 MB crashes.jsonl on the event loop (200-500 ms).
TEST_CASE_METHOD(StateDir, "forgetting one run among many leaves its line until a compaction; a restart forgets it again") {
  const std::string traceback(4000, 't');
  auto with_traceback = [&](Crash c) {
    c.traceback = traceback + "\n";
    return c;
  };
  {
    CrashStore crashes(store);
    crashes.load();
    for (int i = 0; i < 400; ++i) crashes.append(with_traceback(stored_crash("keep", 100 + i)));  // 1.6 MB
    crashes.append(with_traceback(stored_crash("drop", 1)));
    struct stat before {};
    REQUIRE(::stat(dir.journal().c_str(), &before) == 0);
    crashes.forget_runs({"drop"});
    CHECK(crashes.of_run("drop").empty());
    CHECK(crashes.size() == 400);  // not kept, not listed
    CHECK(crashes.dead_bytes() > 4000);
    struct stat after {};
    REQUIRE(::stat(dir.journal().c_str(), &after) == 0);
    CHECK(after.st_ino == before.st_ino);  // not rewritten
    CHECK(dir.lines() == 401);
  }
  {
    CrashStore restarted(store);
    CHECK(restarted.load().records == 401);  // the line is back...
    CHECK(restarted.run_ids() == std::vector<std::string>{"drop", "keep"});
    restarted.forget_runs({"drop"});  // ...and forgotten again (Daemon::restore_state: no such run)
    CHECK(restarted.of_run("drop").empty());
    // Forgetting most of the file is worth a rewrite: every forgotten line goes.
    restarted.forget_runs({"keep"});
    CHECK(restarted.dead_bytes() == 0);
    CHECK(dir.lines() == 0);
  }
  CrashStore again(store);
  CHECK(again.load().records == 0);
}

TEST_CASE_METHOD(StateDir, "mark_flaky persists") {
  {
    CrashStore crashes(store);
    crashes.load();
    crashes.append(stored_crash("r", 1));
    crashes.append(stored_crash("r", 2));
    CHECK(crashes.mark_flaky(2));
    CHECK_FALSE(crashes.mark_flaky(99));
    CHECK(crashes.find(2)->flaky);
    CHECK_FALSE(crashes.find(1)->flaky);
  }
  CrashStore restarted(store);
  restarted.load();
  CHECK(restarted.find(2)->flaky);
  CHECK_FALSE(restarted.find(1)->flaky);
}

// h13fix7 (issue 13): marking a crash flaky (any user's rerun that passed)
// must not rewrite a journal of tens of MB on the event loop.
TEST_CASE_METHOD(StateDir, "a flaky mark is a line in the side file, folded into the journal by the next compaction") {
  const std::string marks = dir.root + "/crashes.flaky.jsonl";
  auto marks_text = [&] {
    std::ifstream in(marks);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  {
    CrashStore crashes(store);
    crashes.load();
    crashes.append(stored_crash("r", 1));
    crashes.append(stored_crash("r", 2));
    crashes.append(stored_crash("gone", 3));
    const std::string journal = dir.text();
    struct stat before {};
    REQUIRE(::stat(dir.journal().c_str(), &before) == 0);
    CHECK(crashes.mark_flaky(2));
    CHECK(crashes.mark_flaky(2));  // once is enough: no second line
    CHECK(crashes.mark_flaky(3));
    struct stat after {};
    REQUIRE(::stat(dir.journal().c_str(), &after) == 0);
    CHECK(after.st_ino == before.st_ino);  // not rewritten
    CHECK(dir.text() == journal);
    CHECK(marks_text() == "{\"crash_id\":2}\n{\"crash_id\":3}\n");
    CHECK(crashes.unwritten() == 0);
  }
  {
    CrashStore restarted(store);
    restarted.load();
    CHECK(restarted.find(2)->flaky);
    CHECK(restarted.find(3)->flaky);
    CHECK_FALSE(restarted.find(1)->flaky);
    // Retention compacts: the flags go into the journal, the side file away.
    restarted.forget_runs({"gone"});
    CHECK_FALSE(std::filesystem::exists(marks));
    CHECK(dir.text().find("\"flaky\":true") != std::string::npos);
  }
  CrashStore again(store);
  again.load();
  CHECK(again.find(2)->flaky);
  CHECK_FALSE(again.find(1)->flaky);
  CHECK_FALSE(again.find(3));
}

TEST_CASE_METHOD(StateDir, "flaky marks that are damaged, torn, planted as a link or name no record are skipped") {
  {
    CrashStore crashes(store);
    crashes.load();
    crashes.append(stored_crash("r", 1));
    crashes.append(stored_crash("r", 2));
  }
  const std::string marks = dir.root + "/crashes.flaky.jsonl";
  {
    std::ofstream out(marks, std::ios::binary);
    out << "not json\n{\"crash_id\":\"2\"}\n{\"crash_id\":99}\n{\"crash_id\":1}\n{\"crash_id\":2";  // torn
  }
  {
    CrashStore restarted(store);
    restarted.load();
    CHECK(restarted.find(1)->flaky);
    CHECK_FALSE(restarted.find(2)->flaky);
    // The next mark starts on a line of its own.
    CHECK(restarted.mark_flaky(2));
  }
  {
    CrashStore restarted(store);
    restarted.load();
    CHECK(restarted.find(2)->flaky);
  }
  // A link lpd did not make is not followed (not even to a file of marks).
  const std::string elsewhere = dir.root + "/elsewhere.jsonl";
  std::filesystem::rename(marks, elsewhere);
  std::filesystem::create_symlink(elsewhere, marks);
  CrashStore linked(store);
  linked.load();
  CHECK_FALSE(linked.find(1)->flaky);
  CHECK_FALSE(linked.find(2)->flaky);
}

TEST_CASE_METHOD(StateDir, "a torn last line is ignored and the next record starts on its own line") {
  {
    CrashStore crashes(store);
    crashes.load();
    crashes.append(stored_crash("r", 1));
  }
  dir.write(R"({"crash_id":2,"run_id":"r","pid":2,"nodeid":"t.py::torn","tra)");
  {
    CrashStore crashes(store);
    const auto report = crashes.load();
    CHECK(report.records == 1);
    CHECK(report.torn_tail);
    CHECK(crashes.append(stored_crash("r", 3)).crash_id == 2);
  }
  CrashStore restarted(store);
  const auto report = restarted.load();
  CHECK(report.records == 2);
  CHECK(report.unreadable_lines == 1);  // the torn piece, now a line of its own
  CHECK_FALSE(report.torn_tail);
  CHECK(restarted.find(2)->pid == 3);
}

TEST_CASE_METHOD(StateDir, "lines over the record limit, not JSON or of the wrong types are skipped") {
  Crash first = stored_crash("r", 1);
  first.crash_id = 1;
  Crash last = stored_crash("r", 3);
  last.crash_id = 3;
  dir.write(first.to_json().dump() + "\n");
  dir.write(R"({"crash_id":2,"run_id":"r","traceback":")" + std::string(CrashStore::kMaxRecordBytes + 10, 'y') +
            "\"}\n");
  dir.write("not json\n[1,2]\n{\"run_id\":\"r\",\"pid\":\"not a pid\"}\n\n");
  dir.write(last.to_json().dump() + "\n");
  CrashStore crashes(store);
  const auto report = crashes.load();
  CHECK(report.records == 2);
  CHECK(report.oversized_lines == 1);
  CHECK(report.unreadable_lines == 3);
  CHECK(ids(crashes.of_run("r")) == std::vector<std::uint64_t>{1, 3});
}

TEST_CASE_METHOD(StateDir, "records from before crash_id are numbered in file order, the same at every start") {
  for (pid_t pid : {1, 2, 3}) {
    nlohmann::json legacy = stored_crash("old", pid).to_json();
    legacy.erase("crash_id");
    legacy.erase("flaky");
    dir.write(legacy.dump() + "\n");
  }
  for (int start = 0; start < 2; ++start) {
    CrashStore crashes(store);
    const auto report = crashes.load();
    CHECK(report.renumbered == 3);
    CHECK(crashes.find(1)->pid == 1);
    CHECK(crashes.find(3)->pid == 3);
  }
  CrashStore crashes(store);
  crashes.load();
  CHECK(crashes.append(stored_crash("new", 4)).crash_id == 4);
}

TEST_CASE("a new record too large for one line is cut, traceback first, saying so") {
  Crash c = stored_crash("r", 1, "t.py::test", 1, CrashStore::kMaxRecordBytes * 2);
  const std::string line = lpd::daemon::crash_line(c, CrashStore::kMaxRecordBytes);
  CHECK(line.size() <= CrashStore::kMaxRecordBytes);
  CHECK(c.traceback.find("too large") != std::string::npos);
  CHECK(c.nodeid == "t.py::test");
}

TEST_CASE_METHOD(StateDir, "a write that fails keeps the record in memory and writes it, in order, once it can") {
  {
    CrashStore crashes(store);
    crashes.load();
    crashes.append(stored_crash("r", 1));
    bool full = true;
    crashes.fail_write_for_test = [&full](std::string_view) { return full ? ENOSPC : 0; };
    CHECK(crashes.append(stored_crash("r", 2)).crash_id == 2);
    CHECK(crashes.append(stored_crash("r", 3)).crash_id == 3);
    CHECK(crashes.unwritten() == 2);
    CHECK(crashes.page(0, 10).crashes.size() == 3);  // still served
    CHECK(dir.lines() == 1);
    full = false;
    CHECK(crashes.flush());
    CHECK(crashes.unwritten() == 0);
    CHECK(dir.lines() == 3);
    // A compaction that fails is retried the same way.
    full = true;
    crashes.forget_runs({"r"});
    CHECK(crashes.unwritten() == 1);
    CHECK(dir.lines() == 3);
    CHECK_FALSE(std::filesystem::exists(dir.journal() + ".new"));
    full = false;
    CHECK(crashes.flush());
    CHECK(dir.lines() == 0);
  }
  CrashStore restarted(store);
  CHECK(restarted.load().records == 0);
  CHECK(restarted.append(stored_crash("r2", 9)).crash_id == 4);
}

TEST_CASE_METHOD(StateDir, "one user's crash records past their budget keep only their tracebacks' ends; another user's are whole") {
  CrashStore store(this->store);
  store.load();
  // 64 KiB tracebacks, one line a frame: the budget is past after about 1,000 of them.
  const std::size_t per_record = 64 * 1024;
  const std::size_t fill = CrashStore::kMaxBytesPerOwner / per_record + 8;
  auto with_frames = [](Crash c, std::size_t bytes, const std::string& last) {
    std::string text;
    while (text.size() + 40 < bytes) text += "  File \"t.py\", line 1 in frame_" + std::to_string(text.size()) + "\n";
    c.traceback = text + last;
    return c;
  };
  for (std::size_t i = 0; i < fill; ++i) {
    Crash c = with_frames(stored_crash("r-greedy", static_cast<pid_t>(1000 + i)), per_record, "  File \"t.py\", line 9 in test_own\n");
    c.owner = 2001;
    store.append(std::move(c));
  }
  const auto greedy = store.of_run("r-greedy");
  REQUIRE(greedy.size() == fill);
  CHECK(greedy.front()->traceback.size() >= per_record - 40);  // within budget: whole
  const std::string& cut = greedy.back()->traceback;
  CHECK(cut.size() < CrashStore::kBudgetTracebackBytes + 300);
  CHECK(cut.find("this user's crash records are past the 64 MiB") != std::string::npos);
  CHECK(cut.ends_with("in test_own\n"));  // the crashing frame, written last, is kept
  CHECK(cut.find("\n  File") != std::string::npos);  // from the start of a line

  Crash other = with_frames(stored_crash("r-other", 77), per_record, "  File \"u.py\", line 3 in test_theirs\n");
  other.owner = 2002;
  CHECK(store.append(std::move(other)).traceback.size() >= per_record - 40);

  // Retention gives the budget back.
  store.forget_runs({"r-greedy"});
  Crash again = with_frames(stored_crash("r-greedy-2", 5), per_record, "x\n");
  again.owner = 2001;
  CHECK(store.append(std::move(again)).traceback.size() >= per_record - 40);
}

TEST_CASE_METHOD(StateDir, "past the hard budget a user's crashes are not kept; their run gets one record saying so") {
  // The budgets scaled down (64 and 96 MiB in lpd) so a few hundred
  // records reach them.
  const CrashStore::OwnerBudget small{2u << 20, 3u << 20};
  static_assert(CrashStore::kRefuseBytesPerOwner > CrashStore::kMaxBytesPerOwner);
  CrashStore store(this->store);
  store.owner_budget = small;
  store.load();
  // A controller telling of workers that never were: 16 KiB nodeids, the
  // reason repeating them; big tracebacks for the first few.
  const std::string long_id = "t.py::test_" + std::string(16000, 'x');
  auto forged = [&](const std::string& run_id, pid_t pid) {
    Crash c = stored_crash(run_id, pid, long_id + std::to_string(pid));
    c.owner = 3001;
    c.signal = 9;
    c.reason = "killed by SIGKILL while running " + c.nodeid;
    if (pid <= 12) c.traceback = std::string(200 * 1024, 't') + "\n";  // the first budget, sooner
    return c;
  };
  pid_t pid = 1;
  std::size_t before = 0;
  for (; pid < 2'000; ++pid) {
    before = store.size();
    store.append(forged("r-forged", pid));
    if (store.size() == before) break;  // not kept, and the marker was there already
  }
  REQUIRE(pid < 2'000);
  const auto kept = store.of_run("r-forged");
  REQUIRE(kept.size() == store.size());
  REQUIRE(kept.size() > 14);
  const Crash& marker = *kept.back();
  CHECK(marker.nodeid.empty());
  CHECK(marker.pid == 0);
  CHECK(marker.where == "session");
  CHECK(marker.reason.find("lpd keeps no more crash records of uid 3001: theirs hold 3 MiB") != std::string::npos);
  // Within the first budget a record is whole; past it, cut.
  CHECK(kept.front()->traceback.size() == 200 * 1024 + 1);
  CHECK(kept.front()->reason.size() > 16000);
  CHECK(kept[11]->pid == 12);  // the last with a 200 KiB traceback, past the first budget (about 9 fill it)
  CHECK(kept[11]->traceback.size() < CrashStore::kBudgetTracebackBytes + 300);
  CHECK(kept[11]->traceback.find("past the 2 MiB lpd keeps per user") != std::string::npos);
  const Crash& last_kept = *kept[kept.size() - 2];
  CHECK(last_kept.nodeid == long_id + std::to_string(pid - 2));
  CHECK(last_kept.reason.size() < CrashStore::kBudgetReasonBytes + 200);
  CHECK(last_kept.reason.find("the rest was not kept") != std::string::npos);
  // What the journal holds is bounded by the hard budget, not by what was told.
  CHECK(std::filesystem::file_size(dir.journal()) <= small.refuse_from);
  // Told again and again: nothing more is kept, the marker is returned.
  CHECK(store.append(forged("r-forged", pid + 1)).crash_id == marker.crash_id);
  CHECK(store.size() == before);
  // Another run of theirs gets its own marker; another user is untouched.
  CHECK(store.append(forged("r-forged-2", 1)).nodeid.empty());
  CHECK(store.size() == before + 1);
  Crash other = stored_crash("r-other", 7);
  other.owner = 3002;
  other.traceback = std::string(100 * 1024, 'o') + "\n";
  CHECK(store.append(std::move(other)).traceback.size() == 100 * 1024 + 1);

  // A restarted lpd counts the same budget from the journal.
  CrashStore restarted(this->store);
  restarted.owner_budget = small;
  restarted.load();
  CHECK(restarted.append(forged("r-forged-3", 1)).nodeid.empty());
  // Retention gives the budget back.
  restarted.forget_runs({"r-forged", "r-forged-2", "r-forged-3"});
  const Crash& whole = restarted.append(forged("r-forged-4", 1));
  CHECK(whole.nodeid == long_id + "1");
  CHECK(whole.traceback.size() == 200 * 1024 + 1);
}
