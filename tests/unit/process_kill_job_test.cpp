#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <memory>
#include <optional>

#include <boost/asio/io_context.hpp>

#include "daemon/os/kill_job.h"
#include "daemon/os/proc_stat.h"
#include "tests/unit/descriptor_pressure.h"

using namespace lpd::daemon;
using lpd::test::DescriptorPressure;

namespace {

ProcStat member_stat(pid_t session, char state = 'S') {
  ProcStat stat;
  stat.pid = 4242;
  stat.state = state;
  stat.pgrp = session;
  stat.session = session;
  stat.start_time = 1000;
  return stat;
}

/// A supervised tree as lpd starts one: a leader that called setsid and a
/// child of it. The child ignores SIGTERM when asked, so only SIGKILL,
/// which needs a pinned member, ends it. The test process is the leader's
/// parent; the child's parent is the leader.
struct Tree {
  pid_t leader = -1;
  pid_t child = -1;
  std::uint64_t child_start_time = 0;

  explicit Tree(bool child_ignores_term) {
    int ready[2];
    REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
    leader = ::fork();
    REQUIRE(leader >= 0);
    if (leader == 0) {
      // Catch2's fatal-signal handlers came along with the fork: a SIGTERM
      // would have these copies print a failure and a summary of their own.
      ::signal(SIGTERM, SIG_DFL);
      ::setsid();
      const pid_t grandchild = ::fork();
      if (grandchild == 0) {
        if (child_ignores_term) ::signal(SIGTERM, SIG_IGN);
        const pid_t self = ::getpid();
        // Said once the disposition is set: the test signals only after.
        (void)!::write(ready[1], &self, sizeof self);
        for (;;) ::pause();
      }
      for (;;) ::pause();
    }
    ::close(ready[1]);
    REQUIRE(::read(ready[0], &child, sizeof child) == static_cast<ssize_t>(sizeof child));
    ::close(ready[0]);
    const auto stat = read_proc_stat(child);
    REQUIRE(stat);
    REQUIRE(stat->session == leader);
    child_start_time = stat->start_time;
  }
  ~Tree() {
    // Whatever a failed check left running. The child's pid is still its
    // own while the check below says so.
    if (check_liveness(child, child_start_time) == Liveness::kAlive) ::kill(child, SIGKILL);
    ::kill(leader, SIGKILL);
    int status;
    ::waitpid(leader, &status, 0);
  }
  Tree(const Tree&) = delete;
  Tree& operator=(const Tree&) = delete;
};

}  // namespace

TEST_CASE("a member is gone only when the kernel says so, never when lpd could not look") {
  const pid_t session = 777;
  // pidfd_open failed.
  CHECK(judge_member(ESRCH, std::nullopt, 0, session) == MemberLook::kNotMember);
  CHECK(judge_member(EMFILE, std::nullopt, 0, session) == MemberLook::kUnknown);
  CHECK(judge_member(ENFILE, std::nullopt, 0, session) == MemberLook::kUnknown);
  CHECK(judge_member(ENOMEM, std::nullopt, 0, session) == MemberLook::kUnknown);
  CHECK(judge_member(ENODEV, std::nullopt, 0, session) == MemberLook::kUnknown);
  // Pinned, then /proc/PID/stat could not be read.
  CHECK(judge_member(0, std::nullopt, ENOENT, session) == MemberLook::kNotMember);
  CHECK(judge_member(0, std::nullopt, ESRCH, session) == MemberLook::kNotMember);
  CHECK(judge_member(0, std::nullopt, EMFILE, session) == MemberLook::kUnknown);
  CHECK(judge_member(0, std::nullopt, EINVAL, session) == MemberLook::kUnknown);  // garbled text
  CHECK(judge_member(0, std::nullopt, EACCES, session) == MemberLook::kUnknown);
  // Pinned and read.
  CHECK(judge_member(0, member_stat(session), 0, session) == MemberLook::kMember);
  CHECK(judge_member(0, member_stat(session, 'Z'), 0, session) == MemberLook::kNotMember);
  CHECK(judge_member(0, member_stat(session, 'X'), 0, session) == MemberLook::kNotMember);
  CHECK(judge_member(0, member_stat(session + 1), 0, session) == MemberLook::kNotMember);  // pid changed hands
}

TEST_CASE("a kill reports the whole tree gone once it is") {
  boost::asio::io_context io;
  Tree tree(/*child_ignores_term=*/false);
  auto job = std::make_shared<KillJob>(io, tree.leader, SIGTERM, std::chrono::seconds(60));
  std::optional<KillJob::Result> result;
  job->start([&](const KillJob::Result& r) { result = r; });
  CHECK(job->members_pinned() == 2);
  while (!result) io.run_one();
  CHECK_FALSE(result->forced);
  CHECK(result->members == 2);
  CHECK(job->failures() == 0);
  CHECK(check_liveness(tree.child, tree.child_start_time) != Liveness::kAlive);
}

TEST_CASE("a kill without descriptors signals the group, waits for what it could not pin, and reports only its end") {
  boost::asio::io_context io;
  Tree tree(/*child_ignores_term=*/true);
  // lpd's event loop and the job's timers exist long before any pressure.
  auto job = std::make_shared<KillJob>(io, tree.leader, SIGTERM, std::chrono::milliseconds(100));
  std::optional<KillJob::Result> result;
  {
    DescriptorPressure pressure;
    job->start([&](const KillJob::Result& r) { result = r; });
    // No pidfd, no /proc: nothing pinned, nothing taken for gone.
    CHECK(job->members_pinned() == 0);
    // Each failed look is an event of the loop (its backoff timer); the
    // grace period passes meanwhile too.
    while (job->failures() < 4) io.run_one();
    CHECK_FALSE(result);
    // The group had SIGTERM all the same: the leader dies of it (waited
    // for, left a zombie for ~Tree), the child ignored it and still runs.
    siginfo_t info{};
    CHECK(::waitid(P_PID, static_cast<id_t>(tree.leader), &info, WEXITED | WNOWAIT) == 0);
    CHECK(info.si_pid == tree.leader);
    CHECK(info.si_status == SIGTERM);
    CHECK(::kill(tree.child, 0) == 0);
  }
  // Descriptors are free again: the next look pins the child, SIGKILL ends
  // it (the grace period is over), and only then is the kill done.
  while (!result) io.run_one();
  CHECK(result->forced);
  CHECK(result->members >= 1);
  CHECK(job->failures() == 0);
  CHECK(check_liveness(tree.child, tree.child_start_time) != Liveness::kAlive);
}
