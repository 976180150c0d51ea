"""Issue 5: supervised test runs with crash attribution, retries and reports."""

import json
import os
import select
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from lpd_harness import EventWaiter, LPCTL_BIN, PYTHON, restart_while_waiting, write_tests

CORPUS = {
    "segv": ("""
import ctypes
def test_fine():
    pass
def test_segv():
    ctypes.string_at(0)
""", "test_segv.py::test_segv", signal.SIGSEGV, None),
    "abort": ("""
import os
def test_abort():
    os.abort()
""", "test_abort.py::test_abort", signal.SIGABRT, None),
    "sigkill": ("""
import os, signal
def test_kill_self():
    os.kill(os.getpid(), signal.SIGKILL)
""", "test_sigkill.py::test_kill_self", signal.SIGKILL, None),
    "exit": ("""
import os
def test_exit():
    os._exit(3)
""", "test_exit.py::test_exit", None, 3),
    "fixture": ("""
import ctypes
import pytest
@pytest.fixture
def broken():
    ctypes.string_at(0)
    yield
def test_uses_fixture(broken):
    pass
""", "test_fixture.py::test_uses_fixture", signal.SIGSEGV, None),
    # Setup and call pass; the death comes in teardown. An xdist controller
    # has seen two passed reports of it by then.
    "teardown": ("""
import os
import pytest
@pytest.fixture
def dies_after():
    yield
    os.abort()
def test_passes_then_dies(dies_after):
    pass
""", "test_teardown.py::test_passes_then_dies", signal.SIGABRT, None),
    # The death comes after the teardown report: pytest frees the fixture
    # values then. An xdist controller has seen three passed reports.
    "after_teardown": ("""
import ctypes
import pytest
class NativeHandle:
    def __del__(self):
        ctypes.string_at(0)
@pytest.fixture
def handle():
    return NativeHandle()
def test_frees_a_bad_handle(handle):
    pass
""", "test_after_teardown.py::test_frees_a_bad_handle", signal.SIGSEGV, None),
}

COLLECTION_CRASH = """
import os
os.abort()
def test_never():
    pass
"""



def lpctl_run(lpd, cwd, *args, timeout=180):
    """Runs `lpctl --json run ...`; returns (returncode, stdout, run.done)."""
    result = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", *args], cwd=cwd,
                            capture_output=True, text=True, timeout=timeout, env=lpd.env())
    lines = [l for l in result.stdout.splitlines() if l.startswith("{")]
    done = json.loads(lines[-1]) if lines else None
    return result.returncode, result.stdout + result.stderr, done


def pytest_args(*args):
    return ["--", PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]


def crashes_of(lpd, run_id):
    return lpd.lpctl_json("crashes", "--run-id", run_id)


@pytest.mark.parametrize("xdist", [False, True], ids=["single", "xdist"])
@pytest.mark.parametrize("case", sorted(CORPUS))
def test_crash_corpus_is_attributed(lpd, work_dir, case, xdist):
    source, nodeid, signo, exit_code = CORPUS[case]
    name = nodeid.split("::")[0]
    write_tests(work_dir, name, source)
    extra = ["-n", "2"] if xdist else []
    code, output, done = lpctl_run(lpd, work_dir, *pytest_args(*extra, name))
    assert done is not None, output
    crashes = crashes_of(lpd, done["run_id"])
    pinned = [c for c in crashes if c["nodeid"] == nodeid]
    assert len(pinned) == 1, (crashes, output)
    crash = pinned[0]
    assert crash["where"] == "test"
    assert crash["signal"] == (int(signo) if signo else None), crash
    if signo:
        assert crash["signal_name"] == signal.Signals(signo).name
        assert signal.Signals(signo).name in crash["reason"]
    else:
        assert crash["exit_code"] == exit_code and f"code {exit_code}" in crash["reason"]
    for field in ("nodeid", "run_id", "pid", "worker_id", "signal", "reason", "crash_time", "duration", "traceback"):
        assert field in crash
    assert crash["worker_id"] == ("controller" if not xdist else crash["worker_id"])
    if xdist:
        assert crash["worker_id"].startswith("gw")
    if signo in (signal.SIGSEGV, signal.SIGABRT):
        assert "Fatal Python error" in crash["traceback"]
    # Nothing is pinned on a test that did not crash.
    assert all(c["nodeid"] in ("", nodeid) for c in crashes)
    # A test that died never finished: no result of it says passed (an
    # xdist controller's copy of the worker's results held its passed setup).
    finished = [json.loads(line)["data"] for line in
                lpd.lpctl("--json", "events", "--run-id", done["run_id"], "--type", "test.finish").stdout.splitlines()]
    assert not [f for f in finished if f["nodeid"] == nodeid and f["outcome"] == "passed"], finished
    # The same record is in the state directory's journal.
    journal = [json.loads(l) for l in open(os.path.join(lpd.state_dir, "crashes.jsonl"))]
    assert any(j["run_id"] == done["run_id"] and j["nodeid"] == nodeid for j in journal)
    if not xdist:
        # lpctl run ends the way the run did: the real signal, or the exit code.
        assert code == (-int(signo) if signo else exit_code), output
    else:
        assert code != 0


@pytest.mark.parametrize("xdist", [False, True], ids=["single", "xdist"])
def test_crash_during_collection_is_not_pinned_on_a_test(lpd, work_dir, xdist):
    write_tests(work_dir, "test_collect.py", COLLECTION_CRASH)
    extra = ["-n", "2", "--max-worker-restart", "0"] if xdist else []
    code, output, done = lpctl_run(lpd, work_dir, *pytest_args(*extra, "test_collect.py"))
    crashes = crashes_of(lpd, done["run_id"])
    assert crashes, output
    assert all(c["nodeid"] == "" and c["where"] == "collection" for c in crashes), crashes
    assert any(c["signal"] == int(signal.SIGABRT) for c in crashes)
    assert code != 0


def test_retry_crashed_converges_and_junit_is_complete(lpd, work_dir):
    write_tests(work_dir, "test_mix.py", """
import ctypes, os
def test_a_ok():
    pass
def test_b_segv():
    ctypes.string_at(0)
def test_c_ok():
    pass
def test_d_abort():
    os.abort()
def test_e_ok():
    pass
""")
    junit = os.path.join(work_dir, "report.xml")
    crash_log = os.path.join(work_dir, "crashes.log")
    code, output, done = lpctl_run(lpd, work_dir, "--retry-crashed", "3", "--junit", junit, "--crash-log", crash_log,
                                   *pytest_args("test_mix.py"))
    assert done["attempts"] == 3, output
    assert code == 1, output  # crashed tests count as failures
    assert {c["nodeid"] for c in done["crashes"]} == {"test_mix.py::test_b_segv", "test_mix.py::test_d_abort"}
    cases = {tc.get("name"): tc for tc in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"test_a_ok", "test_b_segv", "test_c_ok", "test_d_abort", "test_e_ok"}
    for ok in ("test_a_ok", "test_c_ok", "test_e_ok"):
        assert list(cases[ok]) == [], ok  # passed: no failure, error or skipped child
    segv = cases["test_b_segv"].find("error")
    assert segv is not None and "SIGSEGV" in segv.get("message") and "Fatal Python error" in segv.text
    assert "SIGABRT" in cases["test_d_abort"].find("error").get("message")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == "5" and suite.get("errors") == "2" and suite.get("failures") == "0"
    logged = [json.loads(l) for l in open(crash_log)]
    assert [l["nodeid"] for l in logged] == ["test_mix.py::test_b_segv", "test_mix.py::test_d_abort"]
    for line in logged:  # pytest-abort's field names
        assert {"nodeid", "crash_time", "duration", "reason"} <= set(line)
    # lpctl report writes the same document later.
    again = os.path.join(work_dir, "again.xml")
    lpd.lpctl("report", done["run_id"], "--junit", again)
    assert {tc.get("name") for tc in ET.parse(again).getroot().iter("testcase")} == set(cases)


def test_a_crash_after_the_teardown_report_is_never_flaky_and_each_rerun_runs(lpd, work_dir):
    """Under xdist the controller saw every phase of the test pass before
    its worker died freeing a fixture value: that copy is no pass, so the
    crash is not called flaky and both reruns run (each crashes again)."""
    name, nodeid = "test_after_teardown.py", CORPUS["after_teardown"][1]
    write_tests(work_dir, name, CORPUS["after_teardown"][0])
    code, output, done = lpctl_run(lpd, work_dir, "--rerun-crashed", "2", *pytest_args("-n", "2", name))
    assert code != 0 and done is not None, output
    crashes = crashes_of(lpd, done["run_id"])
    assert [(c["nodeid"], c["attempt"], c["flaky"]) for c in crashes] == \
        [(nodeid, 1, False), (nodeid, 2, False), (nodeid, 3, False)], (crashes, output)
    assert "flaky crash" not in output, output


def test_events_follow_sees_job_states_in_order(lpd, work_dir):
    write_tests(work_dir, "test_ok.py", "def test_ok():\n    pass\n")
    result = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--detach",
                             *pytest_args("test_ok.py")], cwd=work_dir, capture_output=True, text=True,
                            env=lpd.env(), timeout=60)
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout)["run_id"]
    follow = lpd.lpctl("--json", "events", "--follow", "--run-id", run_id, timeout=120)
    events = [json.loads(l) for l in follow.stdout.splitlines()]
    jobs = [e["data"]["payload"] for e in events if e["event"] == "job"]
    assert [j["state"] for j in jobs] == ["created", "in-progress", "done"]
    assert jobs[-1]["returncode"] == 0 and all(j["id"] == run_id for j in jobs)
    for e in events:
        if e["event"] == "job":
            assert e["data"]["type"] == "job" and set(e["data"]["payload"]) == {"id", "state", "returncode", "text"}
    kinds = [e["event"] for e in events]
    assert kinds.index("test.start") < kinds.index("test.finish") < kinds.index("run.ended")
    finished = [e["data"] for e in events if e["event"] == "test.finish"]
    assert finished[0]["nodeid"] == "test_ok.py::test_ok" and finished[0]["outcome"] == "passed"


def test_collect_only_reports_collected(lpd, work_dir):
    write_tests(work_dir, "test_ok.py", "def test_ok():\n    pass\n")
    code, output, done = lpctl_run(lpd, work_dir, *pytest_args("--collect-only", "test_ok.py"))
    assert code == 0, output
    listed = lpd.lpctl("--json", "events", "--run-id", done["run_id"], "--type", "job").stdout.splitlines()
    states = [json.loads(line)["data"]["payload"]["state"] for line in listed]
    assert states == ["created", "in-progress", "collected", "done"]


def test_output_streams_and_exit_code_passes_through(lpd, work_dir):
    write_tests(work_dir, "test_fail.py", "def test_fail():\n    print('HELLO-FROM-TEST')\n    assert False\n")
    code, output, done = lpctl_run(lpd, work_dir, *pytest_args("-s", "test_fail.py"))
    assert code == 1 and done["returncode"] == 1 and done["crashes"] == []
    assert "HELLO-FROM-TEST" in output and "1 failed" in output
    log = open(os.path.join(lpd.state_dir, "runs", done["run_id"], "output.log")).read()
    assert "HELLO-FROM-TEST" in log


def read_until(stream, marker, timeout):
    """h18try: what a text pipe carries up to and including `marker`, read
    from its descriptor (the text wrapper stays empty, so communicate()
    goes on where this stopped). Each wait is a select() on the pipe."""
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} on the output within {timeout} s:\n{data.decode(errors='replace')}"
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            chunk = os.read(stream.fileno(), 65536)
            assert chunk, f"the output ended before {marker!r}:\n{data.decode(errors='replace')}"
            data += chunk
    return data.decode(errors="replace")


@pytest.mark.parametrize("ignores_sigint", [False, True], ids=["sigint", "sigkill-after-grace"])
def test_ctrl_c_stops_the_run(lpd, work_dir, ignores_sigint):
    # h18try (issue 18): no duration has to be long enough. The test says on
    # its output when its SIGINT disposition is set (test.start comes before
    # the test body runs: a SIGINT then would beat SIG_IGN), and the run
    # that honours SIGINT gets a grace it never needs (it ends by its own
    # exit, the event waited for), where a 0.5 s grace turned a loaded
    # machine's slow KeyboardInterrupt teardown into SIGKILL.
    write_tests(work_dir, "test_block.py", f"""
import signal, time
def test_block():
    if {ignores_sigint}:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("SIGINT-DISPOSITION-SET", flush=True)
    time.sleep(600)
""")
    grace = "0.5" if ignores_sigint else "600"
    events = EventWaiter(lpd, types=["test.start", "job"])
    proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "run", "--grace", grace,
                             *pytest_args("-s", "test_block.py")], cwd=work_dir, env=lpd.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = events.wait("test.start")
    assert started["nodeid"] == "test_block.py::test_block"
    before = read_until(proc.stdout, b"SIGINT-DISPOSITION-SET", timeout=120)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    out = before + out
    terminating = events.wait("job", run_id=started["run_id"])
    while terminating["payload"]["state"] != "terminating":
        terminating = events.wait("job", run_id=started["run_id"])
    if ignores_sigint:
        assert proc.returncode == -signal.SIGKILL, out
    else:
        assert proc.returncode == 2, out  # pytest's "interrupted"
        assert "KeyboardInterrupt" in out


def test_a_crash_in_a_conftests_sessionstart_is_the_sessions_one_testcase(lpd, work_dir):
    """pytest dies in a conftest's pytest_sessionstart, before any test: the
    shim said the session entered sessionstart, so the crash is pinned
    there; it is the report's one testcase (not a second one for the same
    death), and lpctl does not ask whether the command has a shim."""
    write_tests(work_dir, "conftest.py", "import os, signal\n\n\ndef pytest_sessionstart(session):\n"
                                         "    os.kill(os.getpid(), signal.SIGSEGV)\n")
    write_tests(work_dir, "test_x.py", "def test_x():\n    pass\n")
    junit = os.path.join(work_dir, "report.xml")
    proc = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--junit", junit,
                           *pytest_args("test_x.py")],
                          cwd=work_dir, env=lpd.env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGSEGV, proc.stdout + proc.stderr
    assert "outside any test (sessionstart)" in proc.stderr, proc.stderr
    assert "no lpd shim in it?" not in proc.stderr, proc.stderr
    assert "shim saw no test run" in proc.stderr, proc.stderr
    done = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    assert done["tests_reported"] is False and done["shim_joined"] is True, done
    crashes = crashes_of(lpd, done["run_id"])
    assert [(c["nodeid"], c["phase"]) for c in crashes] == [("", "sessionstart")], crashes
    cases = [(case.get("name"), [child.tag for child in case if child.tag in ("error", "failure", "skipped")])
             for case in ET.parse(junit).getroot().iter("testcase")]
    assert cases == [("sessionstart crash", ["error"])], cases


def test_a_restarted_lpd_still_lists_the_tests_that_never_ran(lpd, work_dir):
    """lpd is killed while a test waits and started again; a later test
    crashes the process. The report has every test: the passes from before
    and after the restart, the crash, and the test the crash kept from
    running, which only the collection (heard by the first lpd) names."""
    fifo = os.path.join(work_dir, "go")
    os.mkfifo(fifo)
    write_tests(work_dir, "test_restart.py", f"""
import ctypes
def test_a_before():
    pass
def test_b_wait():
    open({fifo!r}).read()
def test_c_crash():
    ctypes.string_at(0)
def test_d_never():
    pass
""")
    junit = os.path.join(work_dir, "report.xml")
    events = EventWaiter(lpd, types=["test.start"])
    proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "run", "--junit", junit,
                             *pytest_args("test_restart.py")],
                            cwd=work_dir, env=lpd.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = events.wait("test.start")
    while started["nodeid"] != "test_restart.py::test_b_wait":
        started = events.wait("test.start")
    events.close()
    restart_while_waiting(lpd, fifo)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGSEGV, out + err
    cases = {case.get("name"): [child.tag for child in case] for case in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"test_a_before", "test_b_wait", "test_c_crash", "test_d_never"}, cases
    assert cases["test_a_before"] == [] and cases["test_b_wait"] == [], cases
    assert "error" in cases["test_c_crash"], cases
    assert cases["test_d_never"] == ["skipped"], cases


def test_lpd_killed_mid_run_loses_nothing(lpd, work_dir):
    fifo = os.path.join(work_dir, "go")
    os.mkfifo(fifo)
    write_tests(work_dir, "test_restart.py", f"""
import ctypes
def test_wait():
    open({fifo!r}).read()
def test_crash_later():
    ctypes.string_at(0)
""")
    events = EventWaiter(lpd, types=["test.start"])
    proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", *pytest_args("test_restart.py")],
                            cwd=work_dir, env=lpd.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = events.wait("test.start")
    run_id = started["run_id"]
    events.close()
    restart_while_waiting(lpd, fifo)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGSEGV, out + err
    done = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    assert done["run_id"] == run_id and done["signal"] == int(signal.SIGSEGV)
    crashes = crashes_of(lpd, run_id)
    assert [c["nodeid"] for c in crashes] == ["test_restart.py::test_crash_later"]
    assert crashes[0]["signal_name"] == "SIGSEGV"
    info = lpd.lpctl_json("runs", "-a")
    assert any(r["run_id"] == run_id and r["status"] == "ended" for r in info)


def test_bad_run_requests(lpd, work_dir):
    missing = lpd.lpctl("run", "--", "/no/such/command", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr
    bad_env = lpd.lpctl("run", "--env", "NOEQUALS", "--", "true", check=False)
    assert bad_env.returncode == 64 and "K=V" in bad_env.stderr  # a command-line error, like CLI11's own
    c = lpd.client()
    assert c.request("run.start", argv=[])["error"]["code"] == "bad_request"
    assert c.request("run.start", argv=["true"], cwd="relative")["error"]["code"] == "bad_request"
    assert c.request("run.start", argv=["true"], name="../x")["error"]["code"] == "bad_request"
    assert c.request("run.stop", run_id="nope")["error"]["code"] == "not_found"
    assert c.request("run.attach", run_id="nope")["error"]["code"] == "not_found"
    assert c.request("test.start", nodeid="x")["error"]["code"] == "bad_request"  # not registered
    assert lpd.ping()


MULTIBYTE_WRITER = """
import os, random
random.seed(1)
text = "".join(random.choice(["\\u00e9", "\\u20ac", "\\U0001d11e", "a", "\\n", "\\u4e2d"]) for _ in range(300000)).encode()
with open("expected.bin", "wb") as f:
    f.write(text)
i = 0
while i < len(text):  # odd-sized writes: read boundaries fall inside characters
    n = random.randint(1, 9000)
    os.write(1, text[i:i + n])
    i += n
"""


def test_multibyte_output_reaches_lpctl_run_and_attach_unchanged(lpd, work_dir):
    """Output is pushed in pieces, each a JSON string: a character cut at a
    64 KiB read boundary became U+FFFD in each half (found by this stop's
    attack; output.log itself was exact). 900 KB of valid UTF-8 must come
    through byte for byte, live and replayed."""
    write_tests(work_dir, "writer.py", MULTIBYTE_WRITER)
    live = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", PYTHON, "writer.py"], cwd=work_dir,
                          env=lpd.env(), capture_output=True, timeout=300)
    assert live.returncode == 0, live.stderr
    with open(os.path.join(work_dir, "expected.bin"), "rb") as f:
        expected = f.read()
    assert live.stdout == expected, live.stdout.count("\ufffd".encode())
    run_id = [r for r in lpd.lpctl_json("runs", "-a")][-1]["run_id"]
    replay = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "attach", run_id], cwd=work_dir, env=lpd.env(),
                            capture_output=True, timeout=300)
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout == expected, replay.stdout.count("\ufffd".encode())
