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
import xml.etree.ElementTree as ET

from lpd_harness import Lpd

FAKE_SHIM = r'''
import json, os, socket

def connect():
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["LPD_SOCKET"])
    return s.makefile("rwb")

def send(f, **message):
    f.write((json.dumps(message) + "\n").encode())
    f.flush()

def request(f, **message):
    send(f, **message)
    reply = json.loads(f.readline())
    assert reply.get("ok"), reply
    return reply

run_id = os.environ["LPD_RUN_ID"]
controller, worker = connect(), connect()
for n, (f, worker_id) in enumerate(((controller, None), (worker, "gw0"))):
    request(f, id=1, op="hello", role="shim")
    fields = {"run_id": run_id, "argv": ["pytest", "-n", "1"], "cwd": "/", "hostname": "ci"}
    if worker_id:
        fields["worker_id"] = worker_id
    request(f, id=2, op="run.register", **fields)
# The controller's copy first: the worker could not report (lpd was away).
send(controller, op="worker.results", worker_id="gw0", results=[
    {"nodeid": "t.py::test_a", "outcome": "passed", "phase": "call", "duration": 0.01},
    {"nodeid": "t.py::test_b", "outcome": "failed", "phase": "call", "duration": 0.02, "message": "assert 0"}])
request(controller, id=3, op="ping")  # handled in order: the copy is in
# Then the worker's own, from its last flush.
for nodeid, outcome in (("t.py::test_a", "passed"), ("t.py::test_b", "failed"), ("t.py::test_c", "passed")):
    send(worker, op="test.start", nodeid=nodeid)
    send(worker, op="test.finish", nodeid=nodeid, outcome=outcome, phase="call", duration=0.01,
         message="assert 0" if outcome == "failed" else "")
request(worker, id=3, op="run.end")
request(controller, id=4, op="run.end")
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
