"""Issue 14 (h14left): a process a run left running when its command ended
is reported with the test that was running when it started, then killed.

pytest sets PYTEST_CURRENT_TEST ("NODEID (PHASE)") during each phase of
each test and a process a test starts inherits it, through setsid and
double forks: lpd-monitor reads it from the leftover's /proc/PID/environ.
A process started without it (env=...) is matched by its start time to
the tests lpd saw running; a command that reports no tests names none.
Checked where it shows: lpctl run's last line, run.info, lpd's log and the
JUnit (<system-err> of that test, its outcome unchanged).

Waits are events (process exits, lpd's own event stream), never sleeps."""

import json
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

from lpd_harness import LPCTL_BIN, PYTHON, gone, kill_leftovers, write_tests

LEAKY_TESTS = r'''
import os
import subprocess

import pytest

PIDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pids")


def leave_running(kind, seconds):
    """A background child of a shell that ends at once: orphaned, so it is
    re-parented to lpd-monitor (the subreaper), not to its test."""
    subprocess.run(["sh", "-c", f"sleep {seconds} </dev/null >/dev/null 2>&1 & echo {kind} $! >> {PIDS}"],
                   check=True)


def leave_running_detached(kind, seconds):
    """Double fork and setsid, as a daemonizing server does: a subshell
    starts setsid in the background and ends."""
    subprocess.run(["sh", "-c", f"( setsid sleep {seconds} </dev/null >/dev/null 2>&1 & echo {kind} $! >> {PIDS} )"],
                   check=True)


@pytest.fixture
def leaks_in_setup():
    leave_running("setup", 1002)
    yield


@pytest.fixture
def leaks_in_teardown():
    yield
    leave_running("teardown", 1003)


def test_clean():
    pass


def test_leaks_in_call():
    leave_running("call", 1000)
    leave_running_detached("detached", 1001)


def test_fixture_leak(leaks_in_setup):
    pass


def test_teardown_leak(leaks_in_teardown):
    pass


def test_fails_and_leaks():
    leave_running("failed", 1004)
    assert False, "fails on purpose"
'''

# Which test (nodeid, phase) started each kind of leftover above.
EXPECTED = {
    "call": ("test_leaky.py::test_leaks_in_call", "call"),
    "detached": ("test_leaky.py::test_leaks_in_call", "call"),
    "setup": ("test_leaky.py::test_fixture_leak", "setup"),
    "teardown": ("test_leaky.py::test_teardown_leak", "teardown"),
    "failed": ("test_leaky.py::test_fails_and_leaks", "call"),
}


def run_env(lpd, **extra):
    env = lpd.env(**extra)
    for name in ("LPD_RUN_ID", "LPD_WORKER_ID", "LPD_PAUSE_ON_FAILURE"):
        env.pop(name, None)
    return env


def lpctl_run(lpd, cwd, *args, env=None):
    """`lpctl run ARGS` in `cwd`: (returncode, stderr, run_id)."""
    result = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", *args], cwd=cwd, capture_output=True,
                            text=True, timeout=240, env=env or run_env(lpd))
    first = result.stderr.splitlines()[0]
    assert first.startswith("lpctl: run "), result.stderr
    return result.returncode, result.stderr, first.split()[2]


def left_item(line, pid):
    """The "[pid P: ARGV (...)]" item of lpctl's last line, without brackets.
    ARGV may still be the shell's (the child had not exec'd sleep yet)."""
    start = line.index(f"[pid {pid}: ") + 1
    return line[start:line.index(")]", start) + 1]


def read_pids(path):
    with open(path) as f:
        return {kind: int(pid) for kind, pid in (line.split() for line in f if line.strip())}


def junit_testcases(junit_path):
    suite = ET.parse(junit_path).getroot().find("testsuite")
    return {case.get("name"): case for case in suite.iter("testcase")}, ET.tostring(suite, encoding="unicode")


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_each_leftover_names_the_test_and_phase_that_started_it(lpd, work_dir, workers):
    write_tests(work_dir, "test_leaky.py", LEAKY_TESTS)
    write_tests(work_dir, "pytest.ini", "[pytest]\n")
    junit = os.path.join(work_dir, "junit.xml")
    code, stderr, run_id = lpctl_run(lpd, work_dir, "--junit", junit, "--", PYTHON, "-m", "pytest", "-p",
                                     "no:cacheprovider", "-q", *workers, "test_leaky.py")
    pids = read_pids(os.path.join(work_dir, "pids"))
    passed = False
    try:
        assert sorted(pids) == sorted(EXPECTED), pids
        assert code == 1, stderr  # test_fails_and_leaks failed: the leftovers change no verdict
        # Killed before lpctl heard the end.
        assert [kind for kind, pid in pids.items() if not gone(pid)] == []

        # lpctl's last line: each pid with its test and phase.
        last = stderr.strip().splitlines()[-1]
        assert f"{len(pids)} process(es) left running when the command ended, killed" in last, last
        for kind, pid in pids.items():
            nodeid, phase = EXPECTED[kind]
            assert f"sleep {1000 + list(EXPECTED).index(kind)}" in left_item(last, pid), (kind, last)
            assert left_item(last, pid).endswith(f" (started during {nodeid}, {phase})"), (kind, last)

        # run.info: the structured form, and the old lines.
        info = lpd.run_info(run_id)
        by_pid = {entry["pid"]: entry for entry in info["left_running_processes"]}
        assert sorted(by_pid) == sorted(pids.values()), info
        for kind, pid in pids.items():
            nodeid, phase = EXPECTED[kind]
            entry = by_pid[pid]
            assert (entry["nodeid"], entry["phase"], entry["known_by"]) == (nodeid, phase, "PYTEST_CURRENT_TEST"), \
                (kind, entry)
            assert entry["nodeids"] == [nodeid]
            assert f"sleep {1000 + list(EXPECTED).index(kind)}" in entry["argv"], entry
        assert sorted(int(line.split()[1].rstrip(":")) for line in info["left_running"]) == sorted(pids.values())

        # lpd's log.
        log = lpd.log_text()
        for kind, pid in pids.items():
            assert f"left pid {pid}: " in log and f"(started during {EXPECTED[kind][0]}, " in log

        # JUnit: the test that leaked carries it in <system-err>; outcomes are pytest's.
        cases, xml = junit_testcases(junit)
        assert "test_clean" in cases, xml
        assert cases["test_clean"].find("system-err") is None
        assert cases["test_clean"].find("failure") is None
        assert cases["test_fails_and_leaks"].find("failure") is not None
        for name in ("test_leaks_in_call", "test_fixture_leak", "test_teardown_leak"):
            assert cases[name].find("failure") is None and cases[name].find("error") is None, name
        for kind, pid in pids.items():
            nodeid, phase = EXPECTED[kind]
            err = cases[nodeid.split("::")[1]].find("system-err")
            assert err is not None, kind
            assert f"pid {pid} (" in err.text and f"during its {phase} phase" in err.text, err.text
        call_err = cases["test_leaks_in_call"].find("system-err").text
        assert f"pid {pids['call']} " in call_err and f"pid {pids['detached']} " in call_err
        assert f"pid {pids['setup']} " not in call_err
        passed = True
    finally:
        if not passed:
            kill_leftovers(pids.values())


def test_a_command_without_tests_names_no_test(lpd, work_dir):
    # This test itself runs under pytest: the command inherits our
    # PYTEST_CURRENT_TEST, and its leftover must not be pinned on us.
    assert "PYTEST_CURRENT_TEST" in os.environ
    pidfile = os.path.join(work_dir, "pid")
    code, stderr, run_id = lpctl_run(lpd, work_dir, "--", "sh", "-c",
                                     f"sleep 1005 </dev/null >/dev/null 2>&1 & echo $! > {pidfile}")
    with open(pidfile) as f:
        pid = int(f.read())
    passed = False
    try:
        assert code == 0, stderr
        assert gone(pid)
        assert left_item(stderr.strip().splitlines()[-1], pid).endswith(" (no test known)"), stderr
        info = lpd.run_info(run_id)
        (entry,) = info["left_running_processes"]
        assert entry["pid"] == pid
        assert entry["nodeid"] is None and entry["nodeids"] == [] and entry["known_by"] is None, entry
        assert "test_descendants_tests" not in json.dumps(info)
        passed = True
    finally:
        if not passed:
            kill_leftovers([pid])


SPAWNS_WITHOUT_PYTEST_ENV = r'''
import os
import subprocess

PIDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pids")


def test_spawns_with_its_own_env():
    # The only test: by start time a neighbour within a clock tick (10 ms)
    # or lpd's lag (0.5 s) would be named too ("one of: ..."). Wait (on
    # lpd's event stream) until lpd has handled this test's test.start, so
    # however late lpd is, the leftover starts inside the test's span.
    follow = subprocess.Popen([os.environ["H14_LPCTL"], "--json", "events", "--follow", "--since", "0",
                               "--run-id", os.environ["LPD_RUN_ID"], "--type", "test.start"],
                              stdout=subprocess.PIPE, text=True)
    for line in follow.stdout:
        if json.loads(line)["data"].get("nodeid", "").endswith("::test_spawns_with_its_own_env"):
            break
    follow.kill()
    follow.wait()
    # env=...: no PYTEST_CURRENT_TEST for the child to inherit.
    subprocess.run(["sh", "-c", f"sleep 1006 </dev/null >/dev/null 2>&1 & echo bytime $! >> {PIDS}"],
                   check=True, env={"PATH": os.environ["PATH"]})
'''


def test_without_pytest_s_variable_the_start_time_names_the_test(lpd, work_dir):
    write_tests(work_dir, "test_own_env.py", "import json\n" + SPAWNS_WITHOUT_PYTEST_ENV)
    write_tests(work_dir, "pytest.ini", "[pytest]\n")
    code, stderr, run_id = lpctl_run(lpd, work_dir, "--", PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                                     "test_own_env.py", env=run_env(lpd, H14_LPCTL=LPCTL_BIN))
    pids = read_pids(os.path.join(work_dir, "pids"))
    passed = False
    try:
        assert code == 0, stderr
        pid = pids["bytime"]
        assert gone(pid)
        nodeid = "test_own_env.py::test_spawns_with_its_own_env"
        assert left_item(stderr.strip().splitlines()[-1], pid).endswith(
            f" (started during {nodeid}, by its start time)"), stderr
        (entry,) = lpd.run_info(run_id)["left_running_processes"]
        assert (entry["nodeid"], entry["phase"], entry["known_by"]) == (nodeid, None, "start time"), entry
        passed = True
    finally:
        if not passed:
            kill_leftovers(pids.values())
