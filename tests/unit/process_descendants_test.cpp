// Whole-tree supervision (issue 14, x14tree): which processes are a tree's,
// in what order lpd stops them, and the kernel files it reads, from data.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <memory>
#include <optional>

#include <boost/asio/io_context.hpp>

#include "daemon/os/cgroup.h"
#include "daemon/os/descendants.h"
#include "daemon/os/kill_job.h"
#include "daemon/os/proc_stat.h"

using namespace lpd::daemon;

namespace {

ProcStat entry(pid_t pid, pid_t ppid, pid_t session, char state = 'S', std::uint64_t start_time = 1000) {
  ProcStat stat;
  stat.pid = pid;
  stat.ppid = ppid;
  stat.pgrp = session;
  stat.session = session;
  stat.state = state;
  stat.start_time = start_time;
  return stat;
}

std::vector<pid_t> pids_of(const std::vector<ProcStat>& tree) {
  std::vector<pid_t> pids;
  for (const auto& m : tree) pids.push_back(m.pid);
  return pids;
}

}  // namespace

TEST_CASE("a tree is its root, every descendant by ppid and its session, parents first") {
  // 100 is a helper (its own session). 101 is its child; 102 a grandchild
  // that called setsid (session 102) and forked 104; 103 a zombie child;
  // 300 was re-parented to init but still holds session 100; 200 and 201
  // are someone else's.
  const std::vector<ProcStat> snapshot = {
      entry(1, 0, 1),           entry(200, 1, 200),       entry(104, 102, 102), entry(102, 101, 102),
      entry(101, 100, 100),     entry(100, 50, 100),      entry(103, 100, 100, 'Z'),
      entry(300, 1, 100),       entry(201, 200, 200),
  };
  const auto tree = tree_of(snapshot, 100, 100);
  CHECK(pids_of(tree) == std::vector<pid_t>{100, 101, 102, 104, 300});
  // Without the session, only the ppid tree.
  CHECK(pids_of(tree_of(snapshot, 100, 0)) == std::vector<pid_t>{100, 101, 102, 104});
  // A root that is gone still leads to what it left (re-parented to a subreaper under it).
  CHECK(pids_of(tree_of(snapshot, 101, 0)) == std::vector<pid_t>{101, 102, 104});
  CHECK(pids_of(tree_of(snapshot, 999, 0)).empty());
}

TEST_CASE("a ppid loop in garbled data ends") {
  const std::vector<ProcStat> snapshot = {entry(10, 11, 10), entry(11, 10, 10), entry(12, 11, 10)};
  CHECK(pids_of(tree_of(snapshot, 10, 0)) == std::vector<pid_t>{10, 11, 12});
}

TEST_CASE("without a freezer every member is stopped before any is killed") {
  const std::vector<ProcStat> tree = {entry(100, 1, 100), entry(101, 100, 100), entry(102, 101, 102)};
  CHECK(stop_order(tree, {}) == std::vector<pid_t>{100, 101, 102});
  // A rescan found 103, forked before 101 stopped: only it is new.
  auto grown = tree;
  grown.push_back(entry(103, 101, 100));
  CHECK(stop_order(grown, {100, 101, 102}) == std::vector<pid_t>{103});
  // Settled: nothing left to stop, so the SIGKILLs may go out.
  CHECK(stop_order(grown, {100, 101, 102, 103}).empty());
}

TEST_CASE("a member found in the tree stays one only while it is the process the scan saw") {
  const ProcStat other_session = entry(42, 1, 42, 'S', 5000);
  CHECK(judge_tree_member(0, other_session, 0, 100, 5000) == MemberLook::kMember);
  CHECK(judge_tree_member(0, other_session, 0, 100, 6000) == MemberLook::kNotMember);  // pid reused
  CHECK(judge_tree_member(0, other_session, 0, 100, 0) == MemberLook::kNotMember);     // not vouched for
  CHECK(judge_tree_member(0, entry(42, 1, 42, 'Z', 5000), 0, 100, 5000) == MemberLook::kNotMember);
  CHECK(judge_tree_member(0, entry(42, 1, 100), 0, 100, 0) == MemberLook::kMember);  // the session's
  CHECK(judge_tree_member(EMFILE, std::nullopt, 0, 100, 5000) == MemberLook::kUnknown);
  CHECK(judge_tree_member(ESRCH, std::nullopt, 0, 100, 5000) == MemberLook::kNotMember);
}

TEST_CASE("kernel files: cgroup.procs, cgroup.events, mountinfo, /proc/PID/cgroup") {
  CHECK(parse_pid_list("12\n345\n") == std::vector<pid_t>{12, 345});
  CHECK(parse_pid_list("12 13 \n") == std::vector<pid_t>{12, 13});
  CHECK(parse_pid_list("").empty());
  CHECK(parse_pid_list("0\n-5\n99999999999\nx7\n8") == std::vector<pid_t>{5, 7, 8});

  CHECK(parse_cgroup_populated("populated 1\nfrozen 0\n") == true);
  CHECK(parse_cgroup_populated("populated 0\nfrozen 0\n") == false);
  CHECK_FALSE(parse_cgroup_populated("frozen 0\n"));

  // A hybrid host: cgroup v1 controllers plus the unified hierarchy.
  const std::string hybrid =
      "30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
      "31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate\n"
      "32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
  CHECK(parse_cgroup2_mount(hybrid) == "/sys/fs/cgroup/unified");
  CHECK(parse_cgroup2_mount("40 1 0:30 / /my\\040cg rw - cgroup2 none rw\n") == "/my cg");
  // A bind mount of a sub-cgroup would shift every path: not used.
  CHECK_FALSE(parse_cgroup2_mount("40 1 0:30 /sub /x rw - cgroup2 none rw\n"));
  CHECK_FALSE(parse_cgroup2_mount("32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"));

  CHECK(parse_cgroup2_path("9:name=systemd:/\n4:memory:/x\n0::/\n") == "/");
  CHECK(parse_cgroup2_path("0::/system.slice/lpd.service\n") == "/system.slice/lpd.service");
  CHECK_FALSE(parse_cgroup2_path("4:memory:/x\n"));
  CHECK_FALSE(parse_cgroup2_path("0::/gone (deleted)\n"));
}

namespace {
bool alive_is_1234(pid_t pid) { return pid == 1234; }
}  // namespace

TEST_CASE("an empty cgroup is swept only when its creator cannot be launching into it") {
  // Made by a process that is gone: left over, swept.
  CHECK(sweepable_cgroup_name("t999-3", 1, alive_is_1234));
  CHECK(sweepable_cgroup_name("new-999-3", 1, alive_is_1234));  // an earlier build's name
  // Made by another live lpd (or monitor): its child may be about to join.
  CHECK_FALSE(sweepable_cgroup_name("t1234-3", 1, alive_is_1234));
  // Made by the sweeper itself, which sweeps only between its launches.
  CHECK(sweepable_cgroup_name("t1234-3", 1234, alive_is_1234));
  // Not lpd's: never touched.
  for (const char* name : {"cgroup.procs", "t", "t-1", "t12", "t12-", "tx-1", "t012-1", "user.slice", "t1-1/x"})
    CHECK_FALSE(sweepable_cgroup_name(name, 1, alive_is_1234));
}

TEST_CASE("a record may name only a cgroup lpd's launcher makes, directly under the base") {
  CgroupBase base;
  base.mount = "/sys/fs/cgroup";
  base.relative = "/system.slice/lpd.service/lpd.supervised";
  base.dir = base.mount + base.relative;
  CHECK(is_launch_cgroup(base, base.dir + "/t812-3"));
  for (const std::string& dir : {base.dir, base.dir + "/", base.dir + "/t812-3/x", base.dir + "/../t812-3",
                                 base.dir + "x/t812-3", std::string("/sys/fs/cgroup/t812-3"), base.dir + "/new-812-3",
                                 base.dir + "/cgroup.procs", std::string("t812-3"), std::string()})
    CHECK_FALSE(is_launch_cgroup(base, dir));
  CHECK_FALSE(is_launch_cgroup(CgroupBase{}, "/t812-3"));  // no base: nothing is lpd's
}

TEST_CASE("a leftover's argv is one printable, valid UTF-8 line") {
  using namespace std::string_literals;
  CHECK(describe_cmdline("sleep\0" "100\0"s) == "sleep 100");
  CHECK(describe_cmdline("a\nb\0c\x7f"s) == "a?b c?");
  CHECK(describe_cmdline("pr\xc3\xaat\0"s) == "pr\xc3\xaat");
  CHECK(describe_cmdline("bad\xff\xc3x"s) == "bad??x");
  CHECK(describe_cmdline("\xed\xa0\x80"s) == "???");  // a surrogate is not UTF-8
  CHECK(describe_cmdline(std::string(300, 'x'), 10) == "xxxxxxxxxx...");
  CHECK(describe_cmdline("").empty());
}

TEST_CASE("without a cgroup, a kill reaches a setsid'd double-forked descendant kept by the subreaper leader") {
  // The leader is what SystemProcessLauncher starts where it has no
  // cgroup: its own session, subreaper of its descendants. It forks A;
  // A forks B, which calls setsid (another session) and reports; A exits,
  // so B is re-parented to the leader and is found by ppid alone.
  int ready[2];
  REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
  const pid_t leader = ::fork();
  REQUIRE(leader >= 0);
  if (leader == 0) {
    ::setsid();
    ::signal(SIGTERM, SIG_DFL);  // not Catch2's handler, which would report from this copy of the test
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    const pid_t a = ::fork();
    if (a == 0) {
      if (::fork() == 0) {
        ::setsid();
        ::signal(SIGTERM, SIG_IGN);  // only SIGKILL ends it
        const pid_t self = ::getpid();
        (void)!::write(ready[1], &self, sizeof self);
        for (;;) ::pause();
      }
      ::_exit(0);
    }
    int status;
    ::waitpid(a, &status, 0);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  pid_t b = 0;
  REQUIRE(::read(ready[0], &b, sizeof b) == static_cast<ssize_t>(sizeof b));
  ::close(ready[0]);
  auto b_stat = read_proc_stat(b);
  REQUIRE(b_stat);
  CHECK(b_stat->session == b);  // out of the leader's session: a session scan alone would miss it

  boost::asio::io_context io;
  auto job = std::make_shared<KillJob>(io, leader, SIGTERM, std::chrono::milliseconds(50));
  std::optional<KillJob::Result> result;
  job->start([&](const KillJob::Result& r) { result = r; });
  while (!result) io.run_one();
  CHECK(result->forced);  // B ignored SIGTERM
  CHECK(result->members >= 2);
  CHECK(check_liveness(b, b_stat->start_time) != Liveness::kAlive);
  if (check_liveness(b, b_stat->start_time) == Liveness::kAlive) ::kill(b, SIGKILL);
  int status;
  ::waitpid(leader, &status, 0);
}
