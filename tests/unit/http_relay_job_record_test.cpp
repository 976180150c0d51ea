// issue 16: the HTTP job table across an lpd restart (http/jobs.json), as plain rules.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "daemon/http/relay_job_record.h"
#include "daemon/http/relay_jobs.h"

using lpd::daemon::http::relay_job_from_record;
using lpd::daemon::http::relay_job_record;
using lpd::daemon::http::relay_jobs_file;
using lpd::daemon::http::relay_jobs_from_file;
using lpd::daemon::http::RelayError;
using lpd::daemon::http::RelayJob;
using lpd::daemon::http::RelayJobs;
using lpd::daemon::http::RelayState;
using nlohmann::json;

namespace {

RelayJob running_job() {
  RelayJobs jobs;
  RelayJob& job = jobs.create("j1", "unused", 1000, {"-q", "tests/"}, "/src", false);
  jobs.launched(job, "j1-20261130-190000-abcdef", "/state/runs/j1-20261130-190000-abcdef/output.log", false);
  return job;
}

}  // namespace

TEST_CASE("a job's record reads back as the same job", "[http][jobs]") {
  const RelayJob job = running_job();
  const auto back = relay_job_from_record(relay_job_record(job));
  REQUIRE(back);
  CHECK(back->id == "j1");
  CHECK(back->owner == 1000);
  CHECK(back->args == std::vector<std::string>{"-q", "tests/"});
  CHECK(back->cwd == "/src");
  CHECK(back->state == RelayState::kInProgress);
  CHECK(back->running);
  CHECK(back->run_id == job.run_id);
  CHECK(back->log == job.log);
  CHECK_FALSE(back->returncode);
  CHECK(back->order == job.order);

  json done = relay_job_record(job);
  done["state"] = "done";
  done["running"] = false;
  done["returncode"] = -9;
  const auto ended = relay_job_from_record(done);
  REQUIRE(ended);
  CHECK(ended->state == RelayState::kDone);
  REQUIRE(ended->returncode);
  CHECK(*ended->returncode == -9);
}

TEST_CASE("records lpd would not write are refused, never half-read", "[http][jobs]") {
  const json good = relay_job_record(running_job());
  const auto without = [&](const char* key) {
    json r = good;
    r.erase(key);
    return r;
  };
  const auto with = [&](const char* key, json value) {
    json r = good;
    r[key] = std::move(value);
    return r;
  };
  CHECK_FALSE(relay_job_from_record(json::array()));
  CHECK_FALSE(relay_job_from_record(without("id")));
  CHECK_FALSE(relay_job_from_record(without("owner")));
  CHECK_FALSE(relay_job_from_record(with("id", "../etc")));
  CHECK_FALSE(relay_job_from_record(with("id", 7)));
  CHECK_FALSE(relay_job_from_record(with("owner", -1)));
  CHECK_FALSE(relay_job_from_record(with("state", "paused")));
  CHECK_FALSE(relay_job_from_record(with("args", json::array({"-q", 3}))));
  CHECK_FALSE(relay_job_from_record(with("cwd", "relative")));
  CHECK_FALSE(relay_job_from_record(with("log", "relative.log")));
  CHECK_FALSE(relay_job_from_record(with("run_id", "../../x")));
  CHECK_FALSE(relay_job_from_record(with("returncode", 1e300)));
  json no_run = with("run_id", "");
  CHECK_FALSE(relay_job_from_record(no_run));  // running without a run
  no_run["running"] = false;
  CHECK(relay_job_from_record(no_run));
  json many = good;
  many["args"] = json::array();
  for (std::size_t i = 0; i <= RelayJobs::kMaxArgs; ++i) many["args"].push_back("x");
  CHECK_FALSE(relay_job_from_record(many));
}

TEST_CASE("a table's file keeps the newest record of each id and at most kMaxJobs jobs", "[http][jobs]") {
  json file = {{"jobs", json::array()}};
  for (std::uint64_t i = 1; i <= RelayJobs::kMaxJobs + 5; ++i) {
    json r = relay_job_record(running_job());
    r["id"] = "job" + std::to_string(i);
    r["order"] = i;
    r["run_id"] = "run" + std::to_string(i);
    file["jobs"].push_back(r);
  }
  json again = file["jobs"][RelayJobs::kMaxJobs + 4];  // job105 once more, newer
  again["order"] = 1000;
  again["state"] = "done";
  again["running"] = false;
  file["jobs"].push_back(again);
  file["jobs"].push_back("not a record");
  std::size_t skipped = 0;
  const auto jobs = relay_jobs_from_file(file, skipped);
  REQUIRE(jobs.size() == RelayJobs::kMaxJobs);
  CHECK(jobs.front().id == "job6");  // the five oldest left out
  CHECK(jobs.back().id == "job105");
  CHECK(jobs.back().state == RelayState::kDone);  // its newest record
  CHECK(skipped == 5 + 1 + 1);

  CHECK(relay_jobs_from_file(json::object(), skipped).empty());
  CHECK(relay_jobs_from_file(json{{"jobs", 3}}, skipped).empty());
}

TEST_CASE("a restored table keeps ids taken, follows runs, and settles lost ones", "[http][jobs]") {
  RelayJobs before;
  RelayJob& a = before.create("a", "unused", 1000, {}, "/src", false);
  before.launched(a, "run-a", "/state/runs/run-a/output.log", false);
  RelayJob& b = before.create("b", "unused", 1000, {}, "/src", true);
  before.launched(b, "run-b", "/state/runs/run-b/output.log", true);
  RelayJob& c = before.create("c", "unused", 1000, {}, "/src", false);
  before.launched(c, "run-c", "/state/runs/run-c/output.log", false);
  std::size_t skipped = 0;
  const json file = relay_jobs_file(before.all());

  struct Announced : RelayJobs::Watcher {
    std::vector<std::string> seen;
    void changed(const RelayJob& job) override { seen.push_back(job.id + ":" + std::string(to_string(job.state))); }
  } announced;
  RelayJobs after{&announced};
  const std::vector<std::string>& seen = announced.seen;
  after.restore(relay_jobs_from_file(json::parse(file.dump()), skipped));
  CHECK(skipped == 0);
  CHECK(seen.empty());  // restoring announces nothing
  REQUIRE(after.size() == 3);
  // The id of a job whose run goes on stays taken.
  try {
    after.create("a", "unused", 1000, {}, "/src", false);
    FAIL("a restored id was given out again");
  } catch (const RelayError& e) {
    CHECK(e.status() == 409);
  }
  // lpd's job events still move the restored jobs.
  CHECK(after.run_changed("run-a", "done", 0));
  CHECK(after.get("a").state == RelayState::kDone);
  CHECK(after.run_changed("run-b", "done", 0));
  CHECK(after.get("b").state == RelayState::kCollected);  // a collect-only run ends collected
  // A run lpd lost ends its job with no returncode and says why.
  CHECK(after.run_lost("run-c", "lpd no longer knows this job's run run-c"));
  CHECK(after.get("c").state == RelayState::kDone);
  CHECK_FALSE(after.get("c").returncode);
  CHECK(after.get("c").failure == "lpd no longer knows this job's run run-c");
  CHECK_FALSE(after.get("c").running);
  CHECK(seen == std::vector<std::string>{"a:done", "b:collected", "c:done"});
  // New jobs are ordered after the restored ones.
  RelayJob& d = after.create("d", "unused", 1000, {}, "/src", false);
  CHECK(d.order > after.get("c").order);
}
