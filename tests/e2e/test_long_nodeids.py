"""Issue 13 (found by the attack on it): a test whose nodeid is longer than
lpd keeps (16 KiB; pytest makes one of a long parametrize value) is
reported, under a shortened name, never dropped. lpd refused such a
test.finish, so a failing test vanished from a green-looking JUnit, and a
nodeid past the event ring's record size broke the shim's connection and
every other result of the run. The Python shim and lpd shorten alike
(messages.wire_nodeid, protocol::shortened_nodeid)."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from lpd_harness import LPCTL_BIN, PYTHON, SHIM_PYTHONPATH, write_tests
from test_abort_compat import compat_env

sys.path[:0] = SHIM_PYTHONPATH.split(os.pathsep)

from lpd_pytest import messages  # noqa: E402

# Ids past the bound (20 KB), past the ring's 64 KiB record (70 KB) and past
# the socket's 1 MiB line (1.2 MB); two that share their first 20 KB.
SUITE = """
import pytest

def test_before():
    pass

@pytest.mark.parametrize("s", ["F" * 20000])
def test_long_fail(s):
    assert False, "a real failure"

@pytest.mark.parametrize("s", ["P" * 70000, "G" * 1200000])
def test_long_pass(s):
    pass

@pytest.mark.parametrize("s", ["T" * 20000 + "1", "T" * 20000 + "2"])
def test_twins(s):
    pass
"""

FULL_IDS = (["test_long.py::test_before", "test_long.py::test_long_fail[" + "F" * 20000 + "]"] +
            ["test_long.py::test_long_pass[" + c * n + "]" for c, n in (("P", 70000), ("G", 1200000))] +
            ["test_long.py::test_twins[" + "T" * 20000 + d + "]" for d in "12"])


def finished(lpd, run_id):
    """{nodeid: outcome} of the run's test.finish events."""
    lines = lpd.lpctl("--json", "events", "--run-id", run_id, "--type", "test.finish", timeout=120).stdout.splitlines()
    return {json.loads(line)["data"]["nodeid"]: json.loads(line)["data"]["outcome"] for line in lines}


@pytest.mark.parametrize("xdist", [False, True], ids=["one process", "xdist"])
def test_a_long_nodeid_is_reported_shortened(lpd, work_dir, xdist):
    write_tests(work_dir, "test_long.py", SUITE)
    junit = os.path.join(work_dir, "out.xml")
    command = [PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_long.py"] + (["-n", "2"] if xdist else [])
    result = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--junit", junit, "--", *command],
                            cwd=work_dir, capture_output=True, text=True, timeout=240, env=compat_env(lpd))
    done = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    # One test failed: the run fails, for that reason only (no crash, no lost shim).
    assert result.returncode == 1, (result.stdout[-3000:], result.stderr[-3000:])
    assert "lpd_pytest: warning" not in result.stderr, result.stderr[-3000:]
    assert lpd.lpctl_json("crashes", "--run-id", done["run_id"]) == [], "a crash that never happened"
    kept = [messages.wire_nodeid(n) for n in FULL_IDS]
    assert len(set(kept)) == len(kept)  # the twins stay apart
    assert all(len(n.encode()) <= messages.MAX_NODEID_BYTES for n in kept)
    assert finished(lpd, done["run_id"]) == {n: ("failed" if "test_long_fail" in n else "passed") for n in kept}
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert suite.get("tests") == "6" and suite.get("failures") == "1", ET.tostring(suite)[:500]
    failed = [tc for tc in suite.iter("testcase") if tc.find("failure") is not None]
    assert len(failed) == 1 and "test_long_fail" in failed[0].get("name")
    assert "a real failure" in failed[0].find("failure").get("message", "") + (failed[0].find("failure").text or "")


def test_lpd_shortens_a_long_nodeid_as_the_shim_does(lpd):
    """A client that does not shorten (an older shim, the native shim, a
    hand-written one): lpd keeps the test under the same name the Python
    shim would have sent, instead of refusing it."""
    c = lpd.client()
    run = c.request("run.register", argv=["pytest"], cwd="/", hostname="h")
    assert run["ok"], run
    run_id = run["result"]["run_id"]
    nodeid = "t.py::test_x[" + "\u00e9" * 9000 + "]"  # 18 KB of 2-byte characters
    c.send_raw(json.dumps({"op": "test.start", "nodeid": nodeid}) + "\n")
    c.send_raw(json.dumps({"op": "test.finish", "nodeid": nodeid, "outcome": "failed", "duration": 0.1,
                           "message": "m", "phase": "call"}) + "\n")
    assert c.request("ping")["ok"]  # both handled before the ping (one connection, in order)
    assert finished(lpd, run_id) == {messages.wire_nodeid(nodeid): "failed"}
    c.close()
