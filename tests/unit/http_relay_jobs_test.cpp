// issue 16 (h16api): pytest-relay-run's job states, as RelayJobs decides them.
#include <catch2/catch.hpp>

#include <vector>

#include "daemon/http/relay_jobs.h"

using lpd::daemon::http::RelayError;
using lpd::daemon::http::RelayJob;
using lpd::daemon::http::RelayJobs;
using lpd::daemon::http::RelayState;
using lpd::daemon::http::to_string;

namespace {

/// The states announced, in order ("id:state").
struct Announced : RelayJobs::Watcher {
  std::vector<std::string> seen;
  void changed(const RelayJob& job) override { seen.push_back(job.id + ":" + std::string(to_string(job.state))); }
};

int relay_status_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const RelayError& e) {
    return e.status();
  }
  return 0;
}

}  // namespace

TEST_CASE("a job goes created, in-progress, terminating, done, each announced once", "[http][jobs]") {
  Announced a;
  RelayJobs jobs{&a};
  RelayJob& job = jobs.create("j1", "unused", 1000, {"-q"}, "/src", false);
  CHECK(job.state == RelayState::kCreated);
  jobs.launched(job, "run-1", "/state/runs/run-1/output.log", false);
  CHECK(job.running);
  CHECK(jobs.run_changed("run-1", "in-progress", std::nullopt));  // a retry attempt: no new state
  CHECK(jobs.run_changed("run-1", "terminating", std::nullopt));
  CHECK(jobs.run_changed("run-1", "terminating", std::nullopt));
  CHECK(jobs.run_changed("run-1", "done", 130));
  CHECK(a.seen == std::vector<std::string>{"j1:created", "j1:in-progress", "j1:terminating", "j1:done"});
  CHECK(job.returncode == 130);
  CHECK_FALSE(job.running);
  CHECK_FALSE(jobs.run_changed("other-run", "done", 0));
}

TEST_CASE("a collect-only job announces only collected, and can then be started for real", "[http][jobs]") {
  Announced a;
  RelayJobs jobs{&a};
  RelayJob& job = jobs.create("c", "unused", 1000, {}, "/src", true);
  jobs.launched(job, "run-c1", "/log1", /*collecting=*/true);
  CHECK(job.state == RelayState::kCreated);
  CHECK(relay_status_of([&] { jobs.check_start(job); }) == 409);  // still collecting
  jobs.run_changed("run-c1", "done", 0);
  CHECK(job.state == RelayState::kCollected);
  CHECK(job.returncode == 0);
  CHECK(relay_status_of([&] { jobs.check_start(job); }) == 0);
  jobs.launched(job, "run-c2", "/log2", false);
  jobs.run_changed("run-c1", "done", 0);  // the old run moves nothing now
  CHECK(job.state == RelayState::kInProgress);
  jobs.run_changed("run-c2", "done", 1);
  CHECK(a.seen == std::vector<std::string>{"c:collected", "c:in-progress", "c:done"});
  CHECK(job.returncode == 1);
}

TEST_CASE("starting a running or done job, deleting a running one, a duplicate id: 409", "[http][jobs]") {
  RelayJobs jobs;
  RelayJob& job = jobs.create("j", "unused", 1000, {}, "/", false);
  jobs.launched(job, "r", "/log", false);
  CHECK(relay_status_of([&] { jobs.check_start(job); }) == 409);
  CHECK(relay_status_of([&] { jobs.remove("j"); }) == 409);
  CHECK(relay_status_of([&] { jobs.remove_all(); }) == 409);
  CHECK(jobs.size() == 1);  // remove_all deleted nothing
  CHECK(relay_status_of([&] { jobs.create("j", "unused", 1000, {}, "/", false); }) == 409);
  jobs.run_changed("r", "done", 0);
  CHECK(relay_status_of([&] { jobs.check_start(job); }) == 409);  // done is final
  CHECK(relay_status_of([&] { jobs.remove("j"); }) == 0);
  CHECK(relay_status_of([&] { jobs.remove("j"); }) == 404);
  CHECK(relay_status_of([&] { jobs.get("nope"); }) == 404);
}

TEST_CASE("job ids: the fresh one when none is given; path-safe characters only", "[http][jobs]") {
  RelayJobs jobs;
  CHECK(jobs.create("", "fresh-1", 0, {}, "/", false).id == "fresh-1");
  CHECK(relay_status_of([&] { jobs.create("a/b", "x", 0, {}, "/", false); }) == 400);
  CHECK(relay_status_of([&] { jobs.create("../x", "x", 0, {}, "/", false); }) == 400);
  CHECK(relay_status_of([&] { jobs.create(std::string(65, 'a'), "x", 0, {}, "/", false); }) == 400);
  CHECK(RelayJobs::valid_id("1c7c08d2-2fcc-4531-ab94-d556efca066c"));
}

TEST_CASE("past kMaxJobs the oldest job that is not running goes; all running: 409", "[http][jobs]") {
  RelayJobs jobs;
  for (std::size_t i = 0; i < RelayJobs::kMaxJobs; ++i) {
    RelayJob& job = jobs.create("j" + std::to_string(i), "x", 0, {}, "/", false);
    if (i != 1) jobs.launched(job, "r" + std::to_string(i), "/log", false);
  }
  jobs.create("new1", "x", 0, {}, "/", false);  // evicts j1, the only idle one
  CHECK(jobs.find("j1") == nullptr);
  CHECK(jobs.size() == RelayJobs::kMaxJobs);
  jobs.launched(*jobs.find("new1"), "rn", "/log", false);
  CHECK(relay_status_of([&] { jobs.create("new2", "x", 0, {}, "/", false); }) == 409);
  jobs.run_changed("r5", "done", 0);
  jobs.create("new2", "x", 0, {}, "/", false);
  CHECK(jobs.find("j5") == nullptr);
}

TEST_CASE("a failed first launch ends the job (done, announced) and forgets it", "[http][jobs]") {
  Announced a;
  RelayJobs jobs{&a};
  jobs.create("f", "x", 0, {}, "/nope", false);
  jobs.launch_failed("f", "cannot start job f: working directory /nope does not exist");
  CHECK(a.seen == std::vector<std::string>{"f:created", "f:done"});
  CHECK(jobs.find("f") == nullptr);
}

TEST_CASE("args are split as relay-run splits them (shlex), --collect-only taken out", "[http][jobs]") {
  using lpd::daemon::http::parse_relay_args;
  using lpd::daemon::http::shell_split;
  CHECK(shell_split("-k 'a and not b'") == std::vector<std::string>{"-k", "a and not b"});
  CHECK(shell_split(R"("tests/my dir/test_a.py" -x)") == std::vector<std::string>{"tests/my dir/test_a.py", "-x"});
  CHECK(shell_split(R"(a\ b "c\"d" 'e\f')") == std::vector<std::string>{"a b", "c\"d", "e\\f"});
  CHECK(shell_split("''") == std::vector<std::string>{""});
  CHECK(shell_split("  ").empty());
  CHECK(relay_status_of([] { shell_split("-k 'open"); }) == 400);
  CHECK(relay_status_of([] { shell_split("trailing\\"); }) == 400);
  auto parsed = parse_relay_args({"-q --collect-only", "test_a.py"}, "");
  CHECK(parsed.args == std::vector<std::string>{"-q", "test_a.py"});
  CHECK(parsed.id.empty());
}

TEST_CASE("a --session-id in args names the job, and may not contradict the id", "[http][jobs]") {
  using lpd::daemon::http::parse_relay_args;
  CHECK(parse_relay_args({"--session-id s1", "-q"}, "").id == "s1");
  CHECK(parse_relay_args({"--session-id=s2"}, "").id == "s2");
  // h16hard: taken out of pytest's arguments (pytest has no --session-id without relay's plugin).
  CHECK(parse_relay_args({"--session-id=s2"}, "s2").args.empty());
  CHECK(parse_relay_args({"-q --session-id s1 -x"}, "").args == std::vector<std::string>{"-q", "-x"});
  CHECK(parse_relay_args({"-q", "--session-id", "s1", "tests/"}, "s1").args ==
        std::vector<std::string>{"-q", "tests/"});
  CHECK(relay_status_of([] { parse_relay_args({"--session-id", "s3"}, "other"); }) == 400);
  CHECK(parse_relay_args({"-q"}, "mine").id == "mine");
}
