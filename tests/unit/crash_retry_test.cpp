// Crash records a full disk refused (issue 13, piece "fulldisk"): the
// retry's backoff, and that waiting records are written once, in order.
#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "daemon/crashes/crash_retry.h"
#include "daemon/crashes/crash_store.h"
#include "daemon/core/storage_failure.h"
#include "tests/unit/temp_dir.h"

using lpd::daemon::Crash;
using lpd::daemon::CrashRetry;
using lpd::daemon::CrashStore;
using lpd::daemon::StateStore;
using lpd::daemon::StorageFailure;
using lpd::daemon::crash_retry_delay;
using std::chrono::milliseconds;

namespace {

/// A loaded crash journal in a fresh state directory, with its retry on a
/// loop the test runs by hand.
struct RetryFixture {
  TempDir dir{"lpd-crash-retry"};
  StateStore store{dir.path};
  boost::asio::io_context io;
  CrashStore crashes{store, &retry};  // built next; only its address is kept
  CrashRetry retry{io, crashes};
  RetryFixture() { crashes.load(); }
  /// The crash_ids in crashes.jsonl, in file order.
  std::vector<std::uint64_t> ids() const {
    std::ifstream in(dir.path + "/crashes.jsonl");
    std::vector<std::uint64_t> out;
    for (std::string line; std::getline(in, line);)
      out.push_back(nlohmann::json::parse(line).at("crash_id").get<std::uint64_t>());
    return out;
  }
};

Crash crash_of_pid(pid_t pid) {
  Crash c;
  c.run_id = "r";
  c.pid = pid;
  c.nodeid = "t.py::test_" + std::to_string(pid);
  c.attempt = 1;
  c.where = "test";
  c.signal = 6;
  c.reason = "killed by SIGABRT";
  c.owner = 1000;
  return c;
}

}  // namespace

TEST_CASE("crash records wait 1 s, doubling to 30 s, between tries", "[fulldisk]") {
  CHECK(crash_retry_delay(0) == milliseconds(1000));
  CHECK(crash_retry_delay(1) == milliseconds(1000));
  CHECK(crash_retry_delay(2) == milliseconds(2000));
  CHECK(crash_retry_delay(3) == milliseconds(4000));
  CHECK(crash_retry_delay(5) == milliseconds(16000));
  CHECK(crash_retry_delay(6) == milliseconds(30000));
  CHECK(crash_retry_delay(1000) == milliseconds(30000));
}

TEST_CASE_METHOD(RetryFixture, "a refused crash record arms one retry, a later write stands it down, each lands once in order",
          "[fulldisk]") {
  int full = ENOSPC;
  std::vector<std::string> written;  // every block the journal was asked to take
  crashes.fail_write_for_test = [&](std::string_view bytes) {
    if (full == 0) written.emplace_back(bytes);
    return full;
  };

  CHECK(crashes.append(crash_of_pid(1)).crash_id == 1);
  CHECK(crashes.waiting());
  CHECK(crashes.cause() == "cannot write " + dir.path + "/crashes.jsonl: No space left on device");
  CHECK(retry.armed());
  CHECK(retry.failures() == 1);
  // A second crash on the full disk: both wait, still one retry planned.
  CHECK(crashes.append(crash_of_pid(2)).crash_id == 2);
  CHECK(retry.armed());
  CHECK(retry.failures() == 2);
  CHECK(crashes.unwritten() == 2);
  CHECK(crashes.page(0, 10).crashes.size() == 2);  // served from memory meanwhile
  CHECK(ids().empty());

  // Room again: the next crash writes what waits first, then itself.
  full = 0;
  CHECK(crashes.append(crash_of_pid(3)).crash_id == 3);
  CHECK_FALSE(crashes.waiting());
  CHECK(crashes.cause().empty());
  CHECK_FALSE(retry.armed());
  CHECK(retry.failures() == 0);
  CHECK(ids() == std::vector<std::uint64_t>{1, 2, 3});
  REQUIRE(written.size() == 1);

  // Nothing waits any more: a retry (the timer, or lpd stopping) writes nothing.
  CHECK(crashes.flush());
  retry.last_try();
  io.poll();
  CHECK(written.size() == 1);
  CHECK(ids() == std::vector<std::uint64_t>{1, 2, 3});
}

TEST_CASE_METHOD(RetryFixture, "the retry timer writes what waits once the disk takes it, then stops", "[fulldisk]") {
  int full = EIO;
  crashes.fail_write_for_test = [&](std::string_view) { return full; };
  crashes.append(crash_of_pid(1));
  crashes.append(crash_of_pid(2));
  CHECK(crashes.cause() == "cannot write " + dir.path + "/crashes.jsonl: Input/output error");
  REQUIRE(retry.armed());
  full = 0;
  // The try armed at the first failure (crash_retry_delay(1) = 1 s; the
  // second failed append did not push it later): run the loop until the
  // timer has fired (its handler is the only work queued).
  io.run_one_for(std::chrono::seconds(10));
  CHECK_FALSE(retry.armed());
  CHECK(retry.failures() == 0);
  CHECK(crashes.unwritten() == 0);
  CHECK(ids() == std::vector<std::uint64_t>{1, 2});
  CHECK(io.poll() == 1);  // the fsync the write left for later
  CHECK(io.poll() == 0);  // nothing re-armed
}

// h13burst (issue 13, attack finding): 10,000 processes of one run dying
// together were an fsync each on the event loop (40 s).
TEST_CASE_METHOD(RetryFixture, "a burst of crash records is written at once and synced once, after it", "[crash]") {
  for (int i = 1; i <= 50; ++i) crashes.append(crash_of_pid(i));
  CHECK(ids().size() == 50);  // in the file at once: readers see them
  CHECK(io.poll() == 1);      // one fsync for the burst
  io.restart();               // poll() stopped the context when it ran out of work
  CHECK(io.poll() == 0);
  io.restart();
  crashes.append(crash_of_pid(51));  // a new burst: a new fsync owed
  crashes.sync_now();         // lpd stopping: done now, and the posted one has nothing left to do
  CHECK(io.poll() == 1);
  CHECK(ids().size() == 51);
}

TEST_CASE_METHOD(RetryFixture, "a failing retry backs off: each failed try arms the next, longer one", "[fulldisk]") {
  crashes.fail_write_for_test = [](std::string_view) { return ENOSPC; };
  crashes.append(crash_of_pid(1));
  CHECK(retry.failures() == 1);
  CHECK_FALSE(crashes.flush());  // a try that fails, as the timer's would
  CHECK(retry.failures() == 2);
  CHECK(retry.armed());
  CHECK(crash_retry_delay(retry.failures()) == milliseconds(2000));
  crashes.fail_write_for_test = nullptr;
  retry.last_try();  // lpd stops: the last try writes it
  CHECK_FALSE(retry.armed());
  CHECK(ids() == std::vector<std::uint64_t>{1});
}

TEST_CASE("the full-disk message names the directory and the cause, whatever the errno", "[fulldisk]") {
  CHECK(std::string(StorageFailure(ENOSPC, "/var/lib/lpd", "writing runs/x/run.json").what()) ==
        "cannot write lpd's state directory /var/lib/lpd: No space left on device (writing runs/x/run.json)");
  const StorageFailure eio(EIO, "/var/lib/lpd", "writing procs/db.json");
  CHECK(std::string(eio.what()) ==
        "cannot write lpd's state directory /var/lib/lpd: Input/output error (writing procs/db.json)");
  CHECK(eio.is_resource_shortage());
  CHECK(StorageFailure(EDQUOT, "/s", "x").is_resource_shortage());
  CHECK(StorageFailure(EROFS, "/s", "x").is_resource_shortage());
  CHECK_FALSE(StorageFailure(EACCES, "/s", "x").is_resource_shortage());
}
