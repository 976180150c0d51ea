// The job lifecycle (daemon/jobs/job_lifecycle.h): attempts, retries,
// isolated reruns, how a process's end is judged, the final exit code.
#include <csignal>

#include <catch2/catch.hpp>

#include "daemon/jobs/job.h"
#include "daemon/jobs/job_lifecycle.h"

using namespace lpd::daemon;

TEST_CASE("the job table: an attempt's verdict decides what JobService does next") {
  CHECK(job_step(JobState::kCreated, JobEvent::kStarted)->to == JobState::kInProgress);
  CHECK(job_step(JobState::kInProgress, JobEvent::kAttemptEnded, AttemptVerdict::kRerunDue)->action ==
        JobAction::kStartRerun);
  CHECK(job_step(JobState::kInProgress, JobEvent::kAttemptEnded, AttemptVerdict::kRetryDue)->action ==
        JobAction::kStartRetry);
  CHECK(job_step(JobState::kInProgress, JobEvent::kAttemptEnded, AttemptVerdict::kNothingMore)->to == JobState::kDone);
  // A stopped job never starts another attempt, whatever the plan says.
  for (auto verdict : {AttemptVerdict::kRerunDue, AttemptVerdict::kRetryDue, AttemptVerdict::kNothingMore}) {
    const auto step = job_step(JobState::kTerminating, JobEvent::kAttemptEnded, verdict);
    REQUIRE(step);
    CHECK(step->action == JobAction::kFinish);
  }
  // --collect-only: no retry either.
  CHECK(job_step(JobState::kCollected, JobEvent::kAttemptEnded, AttemptVerdict::kRetryDue)->action == JobAction::kFinish);
  CHECK(job_step(JobState::kInProgress, JobEvent::kStopRequested)->to == JobState::kTerminating);
  CHECK(job_step(JobState::kTerminating, JobEvent::kStopRequested)->action == JobAction::kSignalStop);
  // Nothing moves a finished job.
  CHECK_FALSE(job_step(JobState::kDone, JobEvent::kStopRequested));
  CHECK(job_step(JobState::kDone, JobEvent::kAttemptEnded, AttemptVerdict::kRetryDue)->action == JobAction::kNone);
  // Every row is reachable: no two rows for the same (state, event, verdict).
  for (const auto& a : job_lifecycle()) {
    int same = 0;
    for (const auto& b : job_lifecycle()) same += a.from == b.from && a.event == b.event && a.verdict == b.verdict;
    CHECK(same == 1);
  }
}

TEST_CASE("retry (--retry-crashed): the command again without every crashed test, at most N times") {
  AttemptPlan plan;
  plan.retry_crashed = 2;
  CHECK(plan.attempt_ended({AttemptKind::kFull, false, {"t::a"}, "", false}) == AttemptVerdict::kRetryDue);
  CHECK(plan.excluded == std::vector<std::string>{"t::a"});
  CHECK(plan.attempt_ended({AttemptKind::kRetry, false, {"t::b"}, "", false}) == AttemptVerdict::kRetryDue);
  CHECK(plan.excluded == std::vector<std::string>{"t::a", "t::b"});
  // Out of retries: the third crash ends the job (and is excluded no more usefully).
  CHECK(plan.attempt_ended({AttemptKind::kRetry, false, {"t::c"}, "", false}) == AttemptVerdict::kNothingMore);
  CHECK(plan.retries_done == 2);
}

TEST_CASE("no new crash, a crash outside tests, or a stop: no retry") {
  AttemptPlan plan;
  plan.retry_crashed = 3;
  CHECK(plan.attempt_ended({AttemptKind::kFull, false, {}, "", false}) == AttemptVerdict::kNothingMore);
  CHECK(plan.attempt_ended({AttemptKind::kFull, false, {""}, "", false}) == AttemptVerdict::kNothingMore);
  CHECK(plan.attempt_ended({AttemptKind::kFull, true, {"t::a"}, "", false}) == AttemptVerdict::kStopped);
  // A test that crashes again in a retry was already excluded: not new.
  AttemptPlan again;
  again.retry_crashed = 3;
  again.excluded = {"t::a"};
  CHECK(again.attempt_ended({AttemptKind::kRetry, false, {"t::a"}, "", false}) == AttemptVerdict::kNothingMore);
}

TEST_CASE("rerun (--rerun-crashed): each crashed test alone, until it passes or N reruns, then the retry") {
  AttemptPlan plan;
  plan.rerun_crashed = 2;
  plan.retry_crashed = 1;
  CHECK(plan.attempt_ended({AttemptKind::kFull, false, {"t::a", "t::b"}, "", false}) == AttemptVerdict::kRerunDue);
  CHECK(plan.next_rerun() == "t::a");
  // t::a crashes again alone: one more rerun of it first.
  CHECK(plan.attempt_ended({AttemptKind::kIsolatedRerun, false, {"t::a"}, "t::a", false}) == AttemptVerdict::kRerunDue);
  CHECK(plan.next_rerun() == "t::a");
  // Second rerun fails too: out of reruns, on to t::b.
  CHECK(plan.attempt_ended({AttemptKind::kIsolatedRerun, false, {"t::a"}, "t::a", false}) == AttemptVerdict::kRerunDue);
  CHECK(plan.next_rerun() == "t::b");
  // t::b passes alone: a flaky crash; then the retry without both.
  CHECK(plan.attempt_ended({AttemptKind::kIsolatedRerun, false, {}, "t::b", true}) == AttemptVerdict::kRetryDue);
  CHECK(plan.passed_on_rerun == std::vector<std::string>{"t::b"});
  CHECK(plan.excluded == std::vector<std::string>{"t::a", "t::b"});
  CHECK(plan.attempt_ended({AttemptKind::kRetry, false, {}, "", false}) == AttemptVerdict::kNothingMore);
  CHECK(plan.reruns_done.at("t::a") == 2);
  CHECK(plan.reruns_done.at("t::b") == 1);
}

TEST_CASE("the plan survives a restart of lpd (job.json)") {
  AttemptPlan plan;
  plan.rerun_crashed = 2;
  plan.attempt_ended({AttemptKind::kFull, false, {"t::a"}, "", false});
  const AttemptPlan back = AttemptPlan::from_json(plan.to_json());
  CHECK(back.rerun_queue == plan.rerun_queue);
  CHECK(back.excluded == plan.excluded);
  CHECK(back.rerun_crashed == 2);
  Job job;
  job.plan = plan;
  job.attempt_kind = AttemptKind::kIsolatedRerun;
  job.attempt_only = "t::a";
  const Job j2 = Job::from_json(job.to_json());
  CHECK(j2.attempt_kind == AttemptKind::kIsolatedRerun);
  CHECK(j2.attempt_only == "t::a");
  CHECK(j2.plan.rerun_queue == std::vector<std::string>{"t::a"});
}

TEST_CASE("a process ended while its job was stopped was interrupted, unless it crashed for real") {
  CHECK(worker_end_verdict(false, true, SIGKILL) == WorkerEndVerdict::kNothing);
  CHECK(worker_end_verdict(true, false, SIGKILL) == WorkerEndVerdict::kCrash);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGKILL}) CHECK(worker_end_verdict(true, true, s) == WorkerEndVerdict::kInterrupted);
  CHECK(worker_end_verdict(true, true, std::nullopt) == WorkerEndVerdict::kInterrupted);
  CHECK(worker_end_verdict(true, true, SIGSEGV) == WorkerEndVerdict::kCrash);
  CHECK(worker_end_verdict(true, true, SIGABRT) == WorkerEndVerdict::kCrash);
}

TEST_CASE("final exit code: the command's own, made truthful") {
  FinalFacts f;
  f.exit_code = 0;
  CHECK(final_returncode(f) == 0);
  f.exit_code = 1;
  CHECK(final_returncode(f) == 1);

  SECTION("a signal death is 128+N") {
    FinalFacts g;
    g.signal = SIGSEGV;
    g.test_crashes = 1;
    CHECK(final_returncode(g) == 128 + SIGSEGV);
  }
  SECTION("a crashed test turns a green exit red") {
    FinalFacts g;
    g.exit_code = 0;
    g.test_crashes = 1;
    CHECK(final_returncode(g) == 1);
  }
  SECTION("a crash during collection is never pytest's 5 (no tests ran)") {
    FinalFacts g;
    g.exit_code = 5;
    g.outside_crashes = 1;
    g.outside_signal = SIGABRT;
    CHECK(final_returncode(g) == 128 + SIGABRT);
    g.outside_signal.reset();
    CHECK(final_returncode(g) == 1);
    g.exit_code = 0;
    CHECK(final_returncode(g) == 1);
    g.exit_code = 3;  // the command's own failure stays
    CHECK(final_returncode(g) == 3);
  }
  SECTION("a session error (collection error, failing atexit) is never 0") {
    FinalFacts g;
    g.exit_code = 0;
    g.session_errors = 1;
    CHECK(final_returncode(g) == 1);
    g.exit_code = 5;
    CHECK(final_returncode(g) == 1);
  }
  SECTION("a stopped run with interrupted tests is never 0") {
    FinalFacts g;
    g.stopped = true;
    g.exit_code = 0;
    g.interrupted_tests = 1;
    CHECK(final_returncode(g) == 1);
    g.exit_code = 2;  // pytest's interrupted
    CHECK(final_returncode(g) == 2);
    g.exit_code.reset();
    g.signal = SIGKILL;
    CHECK(final_returncode(g) == 128 + SIGKILL);
    FinalFacts quiet;
    quiet.stopped = true;
    quiet.exit_code = 0;
    CHECK(final_returncode(quiet) == 0);  // stopped between tests, exited cleanly
  }
  SECTION("flaky crashes alone pass, unless --fail-on-flaky") {
    FinalFacts g;
    g.exit_code = 0;
    g.flaky_crashes = 1;
    CHECK(final_returncode(g) == 0);
    g.fail_on_flaky = true;
    CHECK(final_returncode(g) == 1);
    // The command died of the flaky crash itself, and nothing else is wrong.
    FinalFacts died;
    died.signal = SIGSEGV;
    died.flaky_crashes = 1;
    CHECK(final_returncode(died) == 0);
    died.fail_on_flaky = true;
    CHECK(final_returncode(died) == 128 + SIGSEGV);
    // xdist counted the crashed worker's test as a failure: exit 1, no failed test of ours.
    FinalFacts xdist;
    xdist.exit_code = 1;
    xdist.flaky_crashes = 1;
    CHECK(final_returncode(xdist) == 0);
    // Something else failed too, or tests never ran after the crash: the command's code stays.
    xdist.failed_tests = 1;
    CHECK(final_returncode(xdist) == 1);
    died.fail_on_flaky = false;
    died.never_ran = 3;
    CHECK(final_returncode(died) == 128 + SIGSEGV);
    FinalFacts other;
    other.exit_code = 4;  // pytest usage error: not the crash's
    other.flaky_crashes = 1;
    CHECK(final_returncode(other) == 4);
  }
  SECTION("a flaky crash next to a real one: the real one decides") {
    FinalFacts g;
    g.exit_code = 0;
    g.flaky_crashes = 1;
    g.test_crashes = 1;
    CHECK(final_returncode(g) == 1);
  }
  SECTION("the old three-argument form agrees") {
    CHECK(final_returncode(0, std::nullopt, true) == 1);
    CHECK(final_returncode(std::nullopt, SIGABRT, false) == 128 + SIGABRT);
    CHECK(final_returncode(7, std::nullopt, false) == 7);
  }
}

TEST_CASE("the verdict text says how the command ended and, when the run's code differs, why", "[job][issue18]") {
  FinalFacts f;
  f.exit_code = 3;
  CHECK(run_verdict_text(f, final_returncode(f), false, 1, 0) == "exited with code 3");
  // No exit status at all (lpd-monitor killed with lpd): no code is made up.
  FinalFacts lost;
  CHECK(final_returncode(lost) == 1);
  CHECK(run_verdict_text(lost, final_returncode(lost), false, 1, 0) ==
        "ended with no exit status lpd could read (its lpd-monitor is gone); the run fails with exit code 1: how "
        "the command ended is not known");
  // A retry that passed, after a crash that never passed again: the last
  // attempt's 0 is not the run's.
  f.exit_code = 0;
  f.test_crashes = 1;
  CHECK(run_verdict_text(f, final_returncode(f), false, 2, 1) ==
        "its last full run exited with code 0, 1 crash(es); the run fails with exit code 1: a test crashed");
  // A flaky crash alone: the command died of it, the run passes.
  FinalFacts flaky;
  flaky.signal = 11;
  flaky.flaky_crashes = 1;
  CHECK(run_verdict_text(flaky, final_returncode(flaky), false, 2, 1) ==
        "its last full run killed by SIGSEGV, 1 crash(es), 1 flaky; the run passes with exit code 0: every crash "
        "passed when re-run");
  // The signal is the verdict: lpctl dies by it, nothing more to say.
  FinalFacts killed;
  killed.signal = 6;
  killed.test_crashes = 1;
  CHECK(run_verdict_text(killed, final_returncode(killed), true, 1, 1) == "killed by SIGABRT, 1 crash(es)");
  // A crash outside any test turns pytest's 5 into 128+N.
  FinalFacts outside;
  outside.exit_code = 5;
  outside.outside_crashes = 1;
  outside.outside_signal = 11;
  CHECK(run_verdict_text(outside, final_returncode(outside), false, 1, 1) ==
        "exited with code 5, 1 crash(es); the run fails with exit code 139: a crash or error outside any test");
}

TEST_CASE("the verdict counts the tests that never ran, the reason a flaky crash still fails", "[job][issue18]") {
  // --rerun-crashed: the crashed test passed alone, but a test after it
  // never ran in the full run: the command's own 139 stands.
  FinalFacts f;
  f.signal = 11;
  f.flaky_crashes = 1;
  f.never_ran = 1;
  const int code = final_returncode(f);
  CHECK(code == 139);
  CHECK(run_verdict_text(f, code, true, 2, 1) == "its last full run killed by SIGSEGV, 1 crash(es), 1 flaky, 1 never ran");
}

TEST_CASE("the job table, every (state, event, verdict): where it goes and what JobService does", "[job]") {
  using S = JobState;
  using E = JobEvent;
  using V = AttemptVerdict;
  using A = JobAction;
  struct Expect {
    S to;
    A action;
  };
  // What each (state, event, verdict) must give; nullopt: nothing moves.
  const auto expected = [](S from, E event, V verdict) -> std::optional<Expect> {
    switch (event) {
      case E::kStarted:  // the verdict plays no part
        if (from == S::kCreated || from == S::kInProgress || from == S::kCollected) return Expect{S::kInProgress, A::kNone};
        return std::nullopt;  // a stopping or finished job starts nothing
      case E::kCollected:
        if (from == S::kInProgress) return Expect{S::kCollected, A::kNone};
        return std::nullopt;
      case E::kStopRequested:
        if (from == S::kDone) return std::nullopt;
        return Expect{S::kTerminating, A::kSignalStop};
      case E::kAttemptEnded:
        if (from == S::kDone) return Expect{S::kDone, A::kNone};
        if (from != S::kInProgress) return Expect{S::kDone, A::kFinish};  // never started, collect-only, stopping
        switch (verdict) {
          case V::kRerunDue: return Expect{S::kInProgress, A::kStartRerun};
          case V::kRetryDue: return Expect{S::kInProgress, A::kStartRetry};
          case V::kNothingMore:
          case V::kStopped: return Expect{S::kDone, A::kFinish};
          case V::kAny: return std::nullopt;  // a running job's attempt end always has a verdict
        }
        return std::nullopt;
      case E::kStartFailed:  // run.start's launch, or a retry's or rerun's, failed: the job ends
        if (from == S::kCreated || from == S::kInProgress) return Expect{S::kDone, A::kFinish};
        return std::nullopt;  // no other state starts an attempt
    }
    return std::nullopt;
  };
  for (S from : {S::kCreated, S::kCollected, S::kInProgress, S::kTerminating, S::kDone})
    for (E event : {E::kStarted, E::kCollected, E::kStopRequested, E::kAttemptEnded, E::kStartFailed})
      for (V verdict : {V::kAny, V::kStopped, V::kRerunDue, V::kRetryDue, V::kNothingMore}) {
        INFO(to_string(from) << " " << to_string(event) << " verdict " << static_cast<int>(verdict));
        const auto step = job_step(from, event, verdict);
        const auto want = expected(from, event, verdict);
        REQUIRE(step.has_value() == want.has_value());
        if (!step) continue;
        CHECK(step->from == from);
        CHECK(step->event == event);
        CHECK(step->to == want->to);
        CHECK(step->action == want->action);
      }
  // ...and no row is shadowed by another: each is what its own key finds.
  for (const auto& row : job_lifecycle()) {
    const auto step = job_step(row.from, row.event, row.verdict);
    REQUIRE(step);
    CHECK(step->to == row.to);
    CHECK(step->action == row.action);
  }
}
