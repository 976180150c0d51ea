"""An xdist controller's copy of a worker's results (worker.results) and
the worker's own copies, heard both: each test is recorded once.

A worker that ends while lpd is away tells its controller some of its
results never reached lpd; the controller sends lpd its copy. The worker
meanwhile waits (its last flush) for lpd to be back and then hands over
its own: the same tests. Stop 33's attack saw 137 of 1,500 tests twice in
the run's events after two quick restarts under `pytest -n 2`. Here the
two copies are sent in that order by a stand-in shim, so the order is
certain rather than a matter of timing."""

import json
import os
import subprocess
import xml.etree.ElementTree as ET

from lpd_harness import LPCTL_BIN, Lpd, wait_until_in_directory
from test_shim_outcomes import journal_finishes

# What both stand-in shims begin with: a connection to lpd (its socket and
# its file), a notification, a request, and an xdist controller's and its
# worker's registration.
STAND_IN = r'''
import json, os, socket, sys

def connect():
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["LPD_SOCKET"])
    return s, s.makefile("rwb")

def send(f, **message):
    f.write((json.dumps(message) + "\n").encode())
    f.flush()

def request(f, **message):
    send(f, **message)
    reply = json.loads(f.readline())
    assert reply.get("ok"), reply
    return reply

def register_both(controller, worker):
    """hello and run.register on both files: the controller's, then worker gw0's."""
    run_id = os.environ["LPD_RUN_ID"]
    for f, worker_id in ((controller, None), (worker, "gw0")):
        request(f, id=1, op="hello", role="shim")
        fields = {"run_id": run_id, "argv": ["pytest", "-n", "1"], "cwd": "/", "hostname": "ci"}
        if worker_id:
            fields["worker_id"] = worker_id
        request(f, id=2, op="run.register", **fields)
    return controller, worker
'''

# Both copies of a worker's results, as the tests below send them.
TWO_COPIES = STAND_IN + r'''
def connect_both():
    return register_both(connect()[1], connect()[1])

def controller_copy(controller):
    """The controller's copy: the worker could not report (lpd was away)."""
    send(controller, op="worker.results", worker_id="gw0", results=[
        {"nodeid": "t.py::test_a", "outcome": "passed", "phase": "call", "duration": 0.01},
        {"nodeid": "t.py::test_b", "outcome": "failed", "phase": "call", "duration": 0.02, "message": "assert 0"}])
    request(controller, id=3, op="ping")  # handled in order: the copy is in

def worker_copy_and_end(controller, worker):
    """The worker's own copies, from its last flush; then both end."""
    for nodeid, outcome in (("t.py::test_a", "passed"), ("t.py::test_b", "failed"), ("t.py::test_c", "passed")):
        send(worker, op="test.start", nodeid=nodeid)
        send(worker, op="test.finish", nodeid=nodeid, outcome=outcome, phase="call", duration=0.01,
             message="assert 0" if outcome == "failed" else "")
    request(worker, id=3, op="run.end")
    request(controller, id=4, op="run.end")
'''

FAKE_SHIM = TWO_COPIES + r'''
controller, worker = connect_both()
controller_copy(controller)
worker_copy_and_end(controller, worker)
'''


def test_a_result_heard_from_the_controller_and_then_the_worker_is_recorded_once(work_dir):
    script = os.path.join(work_dir, "fake_shim.py")
    with open(script, "w") as f:
        f.write(FAKE_SHIM)
    junit = os.path.join(work_dir, "r.xml")
    lpd = Lpd().start()
    try:
        done = lpd.lpctl("run", "--junit", junit, "--", "/usr/bin/python3", script, check=False)
        assert done.returncode == 0, done.stderr  # the command's own exit status: the stand-in exits 0
        cases = ET.parse(junit).getroot().iter("testcase")
        assert sorted(f"{c.get('classname')}.{c.get('name')}" for c in cases) == ["t.test_a", "t.test_b", "t.test_c"]
        (run,) = lpd.lpctl_json("runs", "-a")
        listed = lpd.lpctl("--json", "events", "--run-id", run["run_id"], "--type", "test.finish").stdout.splitlines()
        assert sorted(json.loads(line)["data"]["nodeid"] for line in listed) == [
            "t.py::test_a", "t.py::test_b", "t.py::test_c"]
    finally:
        lpd.stop()


ENDED_WORKER_SHIM = STAND_IN + r'''
mode = sys.argv[1]
(_, controller), (worker_sock, worker) = connect(), connect()
register_both(controller, worker)
for nodeid in ("t.py::test_a", "t.py::test_b"):
    send(worker, op="test.start", nodeid=nodeid)
    send(worker, op="test.finish", nodeid=nodeid, outcome="passed", phase="call", duration=0.01)
if mode == "in-a-test":
    send(worker, op="test.start", nodeid="t.py::test_c")
request(worker, id=3, op="ping")  # what it sent is in
# The worker goes without run.end, as execnet's SIGINT leaves one that was
# still in its session's end (its terminal summary of 750 failures).
worker_sock.shutdown(socket.SHUT_RDWR)
worker_sock.close()
if mode == "told-by-controller":
    send(controller, op="worker.down", worker_id="gw0", pid=os.getpid(), returncode=-11)  # one process plays both
request(controller, id=4, op="ping")
request(controller, id=5, op="run.end")
'''


def run_ended_worker(lpd, work_dir, mode):
    script = os.path.join(work_dir, "ended_worker_shim.py")
    with open(script, "w") as f:
        f.write(ENDED_WORKER_SHIM)
    junit = os.path.join(work_dir, f"{mode}.xml")
    done = lpd.lpctl("run", "--junit", junit, "--", "/usr/bin/python3", script, mode, check=False)
    return done, ET.parse(junit).getroot().find("testsuite"), lpd.lpctl_json("crashes")


def test_a_worker_gone_after_its_tests_with_no_word_from_its_controller_is_no_crash(work_dir):
    """The attack: `lpctl run -- pytest -n 2` of 15,000 tests, 1,500 failing,
    reported two crashes "outside any test (sessionfinish)" that plain
    pytest never had: execnet interrupts a worker still summing up its
    failures 5 s after its controller said to exit, before the worker's
    run.end. A worker is judged by what its controller saw; with no
    worker.down, no test running and no sign of a crash, it is no crash.
    A worker gone in a test, or one its controller says died of a signal,
    still is."""
    lpd = Lpd().start()
    try:
        done, suite, crashes = run_ended_worker(lpd, work_dir, "after-its-tests")
        assert done.returncode == 0, done.stderr
        assert "crash" not in done.stderr, done.stderr
        assert suite.get("tests") == "2" and suite.get("errors") == "0" and suite.get("failures") == "0"
        assert crashes == []
        assert "left after its tests without ending its session" in lpd.log_text()

        done, suite, crashes = run_ended_worker(lpd, work_dir, "in-a-test")
        assert [c["nodeid"] for c in crashes] == ["t.py::test_c"], crashes
        assert suite.get("errors") == "1", ET.tostring(suite)

        done, suite, crashes = run_ended_worker(lpd, work_dir, "told-by-controller")
        assert len(crashes) == 2 and crashes[-1]["signal"] == 11, crashes
        assert crashes[-1]["phase"] == "sessionfinish"
    finally:
        lpd.stop()


def test_a_run_lpd_does_not_supervise_judges_its_workers_the_same_way(work_dir):
    """The same stand-in run as a plain `pytest -n` with the shim (no `lpctl
    run`): lpd learns a worker's end from its pidfd, which can come before
    its controller's worker.down, so an untold worker waits for that or for
    its run's end before it is judged."""
    script = os.path.join(work_dir, "ended_worker_shim.py")
    with open(script, "w") as f:
        f.write(ENDED_WORKER_SHIM)
    lpd = Lpd().start()
    try:
        for n, mode in enumerate(("after-its-tests", "in-a-test")):
            env = dict(lpd.env(), LPD_RUN_ID=f"plain-{n}")
            done = subprocess.run(["/usr/bin/python3", script, mode], env=env, capture_output=True, text=True,
                                  timeout=120)
            assert done.returncode == 0, done.stderr
        # The second run's crash is recorded once its process's pidfd fires;
        # the first's worker is let go at its run's end, before that.
        assert wait_until_in_directory(lpd.state_dir, lambda: len(lpd.lpctl_json("crashes")) == 1)
        (crash,) = lpd.lpctl_json("crashes")
        assert crash["run_id"] == "plain-1" and crash["nodeid"] == "t.py::test_c", crash
        assert "run plain-0: worker gw0" in lpd.log_text() and "not a crash" in lpd.log_text()
    finally:
        lpd.stop()


RESTART_SHIM = TWO_COPIES + r'''
controller, worker = connect_both()
controller_copy(controller)
with open(sys.argv[1]) as gate:  # blocks until the test has restarted lpd
    gate.read()
# The worker's own copies reach the new lpd (the real shim keeps them until one is back).
worker_copy_and_end(*connect_both())
'''


def test_a_result_told_by_the_controller_before_a_restart_is_recorded_once_when_the_worker_sends_it_after(work_dir):
    """The same two copies with lpd killed (SIGKILL) and started again
    between them: the restarted lpd read the controller's copies back from
    the run's journal, but not that they were the controller's, and took
    the worker's own copies as new results (test_a and test_b twice)."""
    script = os.path.join(work_dir, "restart_shim.py")
    with open(script, "w") as f:
        f.write(RESTART_SHIM)
    gate = os.path.join(work_dir, "restarted")
    os.mkfifo(gate)
    junit = os.path.join(work_dir, "r.xml")
    lpd = Lpd().start()
    proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "run", "--junit", junit, "--",
                             "/usr/bin/python3", script, gate],
                            cwd=work_dir, env=lpd.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        runs_dir = os.path.join(lpd.state_dir, "runs")
        # runs/ appears with the first run, and then the run's directory in it.
        assert wait_until_in_directory(lpd.state_dir, lambda: os.path.isdir(runs_dir)), "no run started"
        assert wait_until_in_directory(runs_dir, lambda: os.listdir(runs_dir)), "no run started"
        (run_id,) = os.listdir(runs_dir)
        run_dir = os.path.join(runs_dir, run_id)
        copies = ["t.py::test_a", "t.py::test_b"]
        assert wait_until_in_directory(run_dir, lambda: os.path.exists(os.path.join(run_dir, "events.jsonl"))
                                       and journal_finishes(lpd.state_dir, run_id) == copies), (
            journal_finishes(lpd.state_dir, run_id))
        lpd.kill9()
        lpd.start()
        os.close(os.open(gate, os.O_WRONLY))  # the stand-in, waiting at the gate, reads its end and goes on
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err  # the command's own exit status: the stand-in exits 0
        cases = ET.parse(junit).getroot().iter("testcase")
        assert sorted(f"{c.get('classname')}.{c.get('name')}" for c in cases) == ["t.test_a", "t.test_b", "t.test_c"]
        listed = lpd.lpctl("--json", "events", "--run-id", run_id, "--type", "test.finish").stdout.splitlines()
        assert sorted(json.loads(line)["data"]["nodeid"] for line in listed) == [
            "t.py::test_a", "t.py::test_b", "t.py::test_c"]
        assert [json.loads(line)["data"].get("told_by_controller", False) for line in listed] == [True, True, False]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        lpd.stop()
