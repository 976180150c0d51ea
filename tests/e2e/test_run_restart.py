"""Fault injection: lpd is SIGKILLed and started again three times while
`lpctl run -- pytest -n 2` runs 520 tests that include crashes, failures
and a skip. Every test must reach the JUnit with its right outcome, the
crash records must be there once each, and nothing may raise into pytest
(issue 12, "Results survive lpd's restart").

The kills are driven by events (the Nth test.finish seen by the lpd of
the moment), never by time. A FIFO holds the last part of the suite until
the third restart is done, so a slow machine cannot finish the suite before
the third kill: tests from GATE on open it for reading, which blocks until
the test opens it for writing."""

import collections
import json
import os
import shutil
import signal
import subprocess
import xml.etree.ElementTree as ET

import pytest

from lpd_harness import LPCTL_BIN, PYTHON, EventWaiter, short_tempdir, write_tests

COUNT = 520
GATE = 400
CRASH = {90, 260, 450}  # two before the gate (lpd killed around them), one after
FAIL = {45, 300}
SKIP = {10}

SUITE = f'''
import os
import signal
import time

import pytest

GATE_FIFO = os.environ["RESTART_GATE"]


@pytest.mark.parametrize("i", range({COUNT}))
def test_many(i):
    if i >= {GATE}:
        os.close(os.open(GATE_FIFO, os.O_RDONLY))  # held until the test opens the writer
    time.sleep(0.002)
    if i in {sorted(CRASH)!r}:
        os.kill(os.getpid(), signal.SIGSEGV)
    if i in {sorted(FAIL)!r}:
        assert i < 0, "fails on purpose"
    if i in {sorted(SKIP)!r}:
        pytest.skip("skipped on purpose")
'''


@pytest.fixture
def work_dir():
    path = short_tempdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


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


def test_lpd_killed_three_times_mid_run_loses_and_doubles_nothing(lpd, work_dir):
    gate = os.path.join(work_dir, "gate")
    os.mkfifo(gate)
    write_tests(work_dir, "test_restart.py", SUITE)
    junit = os.path.join(work_dir, "lpd.xml")
    crash_log = os.path.join(work_dir, "crashes.jsonl")
    env = lpd.env(RESTART_GATE=gate)
    events = EventWaiter(lpd, types=["test.finish"])
    proc = subprocess.Popen(
        [LPCTL_BIN, "--socket", lpd.socket, "run", "--junit", junit, "--crash-log", crash_log, "--",
         PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", "test_restart.py"],
        cwd=work_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = None
    try:
        run_id = None
        for _ in range(3):
            for _ in range(60):  # results the lpd of the moment has (replayed ones count too)
                seen = events.wait("test.finish", timeout=120)
                run_id = run_id or seen.get("run_id")
            events.close()
            lpd.kill9()
            lpd.start()
            events = EventWaiter(lpd, types=["test.finish"])
        events.close()
        writer = os.open(gate, os.O_RDWR)  # lets the rest of the suite through, for good
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if writer is not None:
            os.close(writer)
    console = out + err
    assert "INTERNALERROR" not in console, console[-4000:]
    assert "lpd_pytest: warning" not in console, console[-4000:]
    assert proc.returncode != 0, console[-4000:]  # tests crashed and failed

    cases = ET.parse(junit).getroot().iter("testcase")
    got = collections.Counter()
    outcomes = {}
    for case in cases:
        name = case.get("name")
        got[name] += 1
        outcomes[name] = outcome_of(case)
    expected = {f"test_many[{i}]": expected_outcome(i) for i in range(COUNT)}
    assert not [n for n, k in got.items() if k > 1], "testcases listed twice"
    assert set(outcomes) == set(expected), sorted(set(expected) ^ set(outcomes))[:20]
    wrong = {n: (outcomes[n], expected[n]) for n in expected if outcomes[n] != expected[n]}
    if wrong and os.environ.get("RESTART_DEBUG"):
        with open(os.environ["RESTART_DEBUG"], "w") as f:
            f.write(json.dumps(sorted(wrong.items(), key=lambda kv: int(kv[0][10:-1]))) + "\n" + console + "\n")
            shutil.copy(junit, os.environ["RESTART_DEBUG"] + ".xml")
            shutil.copytree(lpd.state_dir, os.environ["RESTART_DEBUG"] + ".state", dirs_exist_ok=True)
    assert not wrong, (len(wrong), sorted(wrong.items(), key=lambda kv: int(kv[0][10:-1])), console[-1500:])

    crashes = lpd.lpctl_json("crashes", "--run-id", run_id) if run_id else []
    crashed = collections.Counter(c["nodeid"] for c in crashes)
    want = {f"test_restart.py::test_many[{i}]" for i in CRASH}
    assert set(crashed) == want and all(k == 1 for k in crashed.values()), crashed
    with open(crash_log) as f:
        logged = collections.Counter(json.loads(line)["nodeid"] for line in f if line.strip())
    assert set(logged) == want and all(k == 1 for k in logged.values()), logged
