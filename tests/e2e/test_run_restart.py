"""Fault injection: lpd is SIGKILLed and started again three times while
`lpctl run -- pytest -n 2` runs 520 tests that include crashes, failures
and a skip. Every test must reach the JUnit with its right outcome, the
crash records must be there once each, and nothing may raise into pytest
(issue 12, "Results survive lpd's restart").

The kills are driven by events (the Nth test.finish seen by the lpd of
the moment), never by time. The suite is cut in four parts by three FIFO
gates: the tests of part k open gate k for reading, which blocks until this
test opens it for writing, right after the k-th restart. So a slow machine
(ASan) cannot run the suite ahead of the kills, and each new lpd hears from
the workers (a shim re-attaches on its next message, at most every 0.5 s)
before it is killed.

A test's part is the order in which it started, not its index: xdist hands
a crashed worker's tests to its replacement after the ones not yet handed
out, so with parts by index both workers could wait at gate k+1 while tests
of part k were still queued behind them, and no result would reach the lpd
of the moment. By start order, part k has 130 tests whatever xdist does."""

import collections
import json
import os
import shutil
import signal
import subprocess
import xml.etree.ElementTree as ET

import pytest

from lpd_harness import (LPCTL_BIN, PYTHON, EventWaiter, read_line_with_timeout, start_pytest,
                         wait_until_in_directory, write_tests)

COUNT = 520
GATES = (130, 260, 390)  # how many tests started before each gated part
CRASH = {90, 260, 450}  # by index: where xdist runs them decides their part
FAIL = {45, 300}
SKIP = {10}

SUITE = f'''
import fcntl
import os
import signal
import time

import pytest

GATE_DIR = os.environ["RESTART_GATES"]


def started_before():
    """How many tests started before this one, on any worker."""
    fd = os.open(os.path.join(GATE_DIR, "started"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        n = int(os.read(fd, 32) or b"0")
        os.pwrite(fd, str(n + 1).encode().ljust(31), 0)
        return n
    finally:
        os.close(fd)


@pytest.mark.parametrize("i", range({COUNT}))
def test_many(i):
    n = started_before()
    part = sum(1 for first in {GATES!r} if n >= first)
    if part:
        os.close(os.open(os.path.join(GATE_DIR, str(part)), os.O_RDONLY))  # held until the test opens the writer
    # A part lasts well over the shim's 0.5 s between reconnect attempts (it
    # tries on its next message), so each new lpd hears from both workers.
    time.sleep(0.01)
    if i in {sorted(CRASH)!r}:
        os.kill(os.getpid(), signal.SIGSEGV)
    if i in {sorted(FAIL)!r}:
        assert i < 0, "fails on purpose"
    if i in {sorted(SKIP)!r}:
        pytest.skip("skipped on purpose")
'''



def expected_outcome(i):
    if i in CRASH:
        return "crash"
    if i in FAIL:
        return "failure"
    if i in SKIP:
        return "skipped"
    return "passed"


def outcome_of(case):
    for child in case:
        if child.tag == "error":
            return "crash" if child.get("type") == "crash" or "SIGSEGV" in (child.get("message") or "") else "error"
        if child.tag in ("failure", "skipped"):
            return child.tag
    return "passed"


def check_junit(junit, console, returncode):
    """Every test in the JUnit once, with the outcome it had."""
    assert "INTERNALERROR" not in console, console[-4000:]
    assert "lpd_pytest: warning" not in console, console[-4000:]
    assert returncode != 0, console[-4000:]  # tests crashed and failed
    cases = ET.parse(junit).getroot().iter("testcase")
    got = collections.Counter()
    outcomes = {}
    for case in cases:
        name = case.get("name")
        got[name] += 1
        outcomes[name] = outcome_of(case)
    expected = {f"test_many[{i}]": expected_outcome(i) for i in range(COUNT)}
    assert not [n for n, k in got.items() if k > 1], "testcases listed twice"
    assert set(outcomes) == set(expected), (sorted(set(expected) ^ set(outcomes))[:20], console[-1500:])
    wrong = {n: (outcomes[n], expected[n]) for n in expected if outcomes[n] != expected[n]}
    assert not wrong, (len(wrong), sorted(wrong.items(), key=lambda kv: int(kv[0][10:-1])), console[-1500:])


def end_leftovers(proc, fds):
    """A test's cleanup: kills `proc` if it still runs (a failed check) and
    closes the gate descriptors in `fds` (None: never opened)."""
    if proc.poll() is None:
        proc.kill()
        proc.communicate()
    for fd in fds:
        if fd is not None:
            os.close(fd)


def test_lpd_killed_three_times_mid_run_loses_and_doubles_nothing(lpd, work_dir):
    gates = os.path.join(work_dir, "gates")
    os.mkdir(gates)
    for part in range(1, len(GATES) + 1):
        os.mkfifo(os.path.join(gates, str(part)))
    write_tests(work_dir, "test_restart.py", SUITE)
    junit = os.path.join(work_dir, "lpd.xml")
    crash_log = os.path.join(work_dir, "crashes.jsonl")
    env = lpd.env(RESTART_GATES=gates)
    events = EventWaiter(lpd, types=["test.finish"])
    proc = subprocess.Popen(
        [LPCTL_BIN, "--socket", lpd.socket, "run", "--junit", junit, "--crash-log", crash_log, "--",
         PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", "test_restart.py"],
        cwd=work_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writers = []
    try:
        run_id = None
        for part in range(1, len(GATES) + 1):
            for n in range(60):  # results the lpd of the moment has (replayed ones count too)
                try:
                    seen = events.wait("test.finish", timeout=120)
                except TimeoutError:
                    raise AssertionError(f"part {part}: only {n} results reached lpd; its log:\n"
                                         + lpd.log_text()[-3000:])
                run_id = run_id or seen.get("run_id")
            events.close()
            lpd.kill9()
            lpd.start()
            events = EventWaiter(lpd, types=["test.finish"])
            # The next part may run: kept open for good, so later opens pass at once.
            writers.append(os.open(os.path.join(gates, str(part)), os.O_RDWR))
        events.close()
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            # A failed check: stop the run too (workers held at a gate would
            # outlive this test), not only lpctl.
            for part in range(len(writers) + 1, len(GATES) + 1):
                writers.append(os.open(os.path.join(gates, str(part)), os.O_RDWR))
            if run_id:
                lpd.lpctl("stop", run_id, "--grace", "1", check=False)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        for writer in writers:
            os.close(writer)
    console = out + err
    try:
        check_junit(junit, console, proc.returncode)
    except AssertionError:
        if os.environ.get("RESTART_DEBUG"):  # what a failure needs to be understood
            debug = os.environ["RESTART_DEBUG"]
            with open(debug, "w") as f:
                f.write(console)
            shutil.copy(junit, debug + ".xml")
            shutil.copytree(lpd.state_dir, debug + ".state", dirs_exist_ok=True)
            shutil.copy(lpd.log_path, debug + ".lpd.log")
        raise

    crashes = lpd.lpctl_json("crashes", "--run-id", run_id) if run_id else []
    crashed = collections.Counter(c["nodeid"] for c in crashes)
    want = {f"test_restart.py::test_many[{i}]" for i in CRASH}
    assert set(crashed) == want and all(k == 1 for k in crashed.values()), crashed
    with open(crash_log) as f:
        logged = collections.Counter(json.loads(line)["nodeid"] for line in f if line.strip())
    assert set(logged) == want and all(k == 1 for k in logged.values()), logged


def test_a_command_that_is_not_pytest_stays_active_across_a_kill9_restart(lpd, work_dir):
    """No shim registers such a run, so nothing but its job may end it: after
    lpd is killed and restarted it is still active (never pruned), and lpctl
    run reports the command's own exit code when it ends."""
    gate = os.path.join(work_dir, "gate")
    os.mkfifo(gate)
    proc = subprocess.Popen(
        [LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--", "sh", "-c", f"echo started; read x < {gate}; exit 3"],
        cwd=work_dir, env=lpd.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = None
    try:
        assert "started" in read_line_with_timeout(proc.stdout, 120)
        (run,) = [r for r in lpd.lpctl_json("runs") if r.get("active", True)]
        run_id = run["run_id"]
        lpd.kill9()
        lpd.start()
        assert run_id in [r["run_id"] for r in lpd.lpctl_json("runs")], "the run was ended by the restart"
        lpd.lpctl("run", "--", "true")  # a newer run, ended
        lpd.lpctl("prune", "--keep-runs", "1")
        assert os.path.isdir(os.path.join(lpd.state_dir, "runs", run_id)), "an active run was pruned"
        writer = os.open(gate, os.O_RDWR)
        os.write(writer, b"go\n")
        out, err = proc.communicate(timeout=120)
    finally:
        end_leftovers(proc, [writer])
    assert proc.returncode == 3, out[-2000:] + err[-2000:]


AWAY_SUITE = '''
import os

import pytest


def test_first():
    # Tell the e2e test this worker is past its start-up, then wait for lpd.
    with open(os.environ["AWAY_READY"], "w") as f:
        f.write("running\\n")
    os.close(os.open(os.environ["AWAY_GATE"], os.O_RDONLY))


def test_passes():
    pass


def test_fails():
    assert 0, "fails on purpose"


@pytest.mark.skip(reason="skipped on purpose")
def test_skipped():
    pass
'''


def test_pytest_started_while_lpd_is_away_reports_once_it_is_back(lpd, work_dir):
    """An xdist controller and worker that start while lpd restarts (a worker
    xdist replaces after a crash, often) cannot join the run then; they must
    still report every test once lpd is back, not run unseen and leave lpd
    to call their tests not run."""
    gate_start = os.path.join(work_dir, "start")
    gate = os.path.join(work_dir, "gate")
    ready = os.path.join(work_dir, "ready")
    for fifo in (gate_start, gate, ready):
        os.mkfifo(fifo)
    write_tests(work_dir, "test_away.py", AWAY_SUITE)
    junit = os.path.join(work_dir, "lpd.xml")
    command = (f"echo started; read x < {gate_start}; "
               f"exec {PYTHON} -m pytest -p no:cacheprovider -q -n 1 test_away.py")
    proc = subprocess.Popen(
        [LPCTL_BIN, "--socket", lpd.socket, "run", "--junit", junit, "--", "sh", "-c", command],
        cwd=work_dir, env=lpd.env(AWAY_GATE=gate, AWAY_READY=ready),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fds = []
    try:
        assert "started" in read_line_with_timeout(proc.stdout, 120)
        (run,) = [r for r in lpd.lpctl_json("runs") if r.get("active", True)]
        lpd.kill9()
        ready_fd = os.open(ready, os.O_RDWR)  # never EOF: a line or nothing
        fds.append(ready_fd)
        fds.append(os.open(gate_start, os.O_RDWR))
        os.write(fds[-1], b"go\n")  # pytest starts now, with lpd away
        with os.fdopen(os.dup(ready_fd)) as ready_lines:
            assert read_line_with_timeout(ready_lines, 120) == "running\n"
        lpd.start()
        fds.append(os.open(gate, os.O_RDWR))  # test_first goes on, and so does the rest
        out, err = proc.communicate(timeout=240)
    finally:
        end_leftovers(proc, fds)
    console = out + err
    assert "INTERNALERROR" not in console, console[-3000:]
    outcomes = {case.get("name"): outcome_of(case) for case in ET.parse(junit).getroot().iter("testcase")}
    assert outcomes == {"test_first": "passed", "test_passes": "passed", "test_fails": "failure",
                        "test_skipped": "skipped"}, (outcomes, console[-3000:])
    skipped = [case.find("skipped") for case in ET.parse(junit).getroot().iter("testcase")]
    assert [s.get("type") for s in skipped if s is not None] != ["lpd.notrun"], console[-3000:]
    assert proc.returncode == 1, console[-3000:]  # test_fails
    assert "results are kept and sent to run " + run["run_id"] in console, console[-3000:]


CRASH_AFTER_RESTART_SUITE = '''
import ctypes
import os


def test_crashes():
    os.close(os.open(os.environ["CRASH_GATE"], os.O_RDONLY))  # held until lpd was restarted
    ctypes.string_at(0)


def test_passes():
    os.close(os.open(os.environ["CRASH_GATE"], os.O_RDONLY))
'''


def test_plain_xdist_worker_crash_after_a_restart_is_recorded(lpd, work_dir):
    """A plain `pytest -n 2` (no lpctl run): lpd is restarted while a worker
    runs a test, the worker never talks to the new lpd and dies; only its
    controller saw it. The crash must still be recorded on that test."""
    gate = os.path.join(work_dir, "gate")
    os.mkfifo(gate)
    write_tests(work_dir, "test_crash_late.py", CRASH_AFTER_RESTART_SUITE)
    events = EventWaiter(lpd, types=["test.start"])
    crash_log = os.path.join(work_dir, "crashed_tests.jsonl")  # pytest-abort's, written by the shim's writer
    proc = start_pytest(lpd, work_dir, "-n", "2", "test_crash_late.py",
                        env_extra={"CRASH_GATE": gate, "PYTEST_ABORT_CRASHED_TESTS_LOG": crash_log})
    writer = None
    try:
        started = {events.wait("test.start", timeout=120)["nodeid"] for _ in range(2)}
        assert started == {"test_crash_late.py::test_crashes", "test_crash_late.py::test_passes"}
        events.close()
        lpd.kill9()
        lpd.start()
        writer = os.open(gate, os.O_RDWR)  # both tests go on, with the new lpd
        out, _ = proc.communicate(timeout=120)
    finally:
        end_leftovers(proc, [writer])
    assert "crashed while running 'test_crash_late.py::test_crashes'" in out, out[-3000:]
    crashes = lpd.lpctl_json("crashes")
    assert [(c["nodeid"], c.get("signal_name")) for c in crashes] == [
        ("test_crash_late.py::test_crashes", "SIGSEGV")], (crashes, out[-3000:])
    # The crash log's writer lost lpd with it, came back and wrote the line once.
    assert "lpd_pytest: warning" not in out, out[-3000:]
    with open(crash_log) as f:
        logged = [json.loads(line)["nodeid"] for line in f if line.strip()]
    assert logged == ["test_crash_late.py::test_crashes"], (logged, out[-3000:])


ALONE_SUITE = '''
import ctypes
import os


def test_1_passes():
    pass


def test_2_waits_for_lpd_to_die():
    with open(os.environ["ALONE_GATE"]) as gate:  # blocks until the test opens it, lpd killed
        gate.read()


def test_3_passes_while_lpd_is_away():
    pass


def test_4_crashes_while_lpd_is_away():
    ctypes.string_at(0)


def test_5_never_runs():
    pass
'''


def test_a_single_process_dying_while_lpd_is_away_leaves_its_lost_results_unknown_not_unrun(lpd, work_dir):
    """The attack on issue 13: a pytest without xdist that ran tests and
    crashed while lpd was away took those results with it (its ring and
    queue died with it), and the restarted lpd listed them as "not run: a
    test process crashed" and counted them as never run. What lpd cannot
    know it now says it cannot know: "result unknown ... may have run"."""
    write_tests(work_dir, "test_alone.py", ALONE_SUITE)
    gate = os.path.join(work_dir, "gate")
    os.mkfifo(gate)
    events = EventWaiter(lpd, types=["test.start"])
    proc = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--detach", "--", PYTHON, "-m",
                           "pytest", "-p", "no:cacheprovider", "-q", "test_alone.py"], cwd=work_dir,
                          env=lpd.env(ALONE_GATE=gate), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(proc.stdout.splitlines()[-1])["run_id"]
    events.wait("test.start", timeout=120, nodeid="test_alone.py::test_2_waits_for_lpd_to_die")
    events.close()
    lpd.kill9()
    with open(gate, "w") as f:
        f.write("go")
    run_dir = os.path.join(lpd.state_dir, "runs", run_id)
    # lpd-monitor writes how the command ended, lpd or not.
    assert wait_until_in_directory(run_dir, lambda: os.path.exists(os.path.join(run_dir, "exit.json")))
    lpd.start()
    attach = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "attach", run_id], capture_output=True, text=True,
                            timeout=120, env=lpd.env())
    assert attach.returncode == -signal.SIGSEGV, attach.stderr  # lpctl ends by the run's signal
    assert ("4 without a result (never ran, or ran while lpd was away and lost with the crash)"
            in attach.stderr), attach.stderr
    report = lpd.lpctl("report", run_id, "--junit", "-", check=False)
    cases = {c.get("name"): c for c in ET.fromstring(report.stdout).iter("testcase")}
    assert [child.tag for child in cases["test_1_passes"]] == []
    for name in ("test_2_waits_for_lpd_to_die", "test_3_passes_while_lpd_is_away",
                 "test_4_crashes_while_lpd_is_away", "test_5_never_runs"):
        (skipped,) = list(cases[name])
        assert skipped.tag == "skipped" and skipped.get("type") == "lpd.notrun", name
        assert skipped.get("message").startswith("result unknown: a test process crashed while lpd was restarting"), \
            skipped.get("message")
        assert skipped.get("message").endswith("this test may have run")
