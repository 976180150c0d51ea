"""Issue 13: crash records at scale. `lpctl crashes` pages through a history
larger than the protocol's 1 MiB line limit (text and --json), crash_id is
stable and increasing across restarts, and a restarted lpd never records
one crash twice."""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from lpd_harness import (EventWaiter, LPCTL_BIN, PYTHON, restart_while_waiting, seed_run, wait_until_in_directory,
                         write_tests)

LINE_LIMIT = 1024 * 1024



def pytest_args(*args):
    return ["--", PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]


def seed_crashes(state_dir, count, with_ids=True, big_every=0):
    """Writes crash records straight into a state directory lpd has not
    started on yet (as an earlier lpd would have left them): ~4 KB
    tracebacks, every `big_every`-th one 64 KiB (the most lpd keeps), of
    seven ended runs seeded beside them (lpd forgets the records of runs
    it does not keep)."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    os.chmod(state_dir, 0o700)
    now = time.time()
    for r in range(7):
        seed_run(state_dir, f"20261101-000000-{r:06x}", now - 600 + r, ended_at=now - 500 + r, owner=os.getuid())
    nodeids = []
    with open(os.path.join(state_dir, "crashes.jsonl"), "a") as f:
        for i in range(count):
            nodeid = f"tests/test_seeded.py::test_case[{i}]"
            nodeids.append(nodeid)
            size = 64 * 1024 if big_every and i % big_every == 0 else 4096
            record = {"run_id": f"20261101-000000-{i % 7:06x}", "nodeid": nodeid, "where": "test", "phase": "call",
                      "worker_id": "gw0", "pid": 40000 + i, "signal": 11, "signal_name": "SIGSEGV",
                      "exit_code": None, "reason": f"killed by SIGSEGV while running {nodeid}",
                      "traceback": "Fatal Python error: Segmentation fault\n" + "t" * size,
                      "crash_time": 1795000000.0 + i, "duration": 0.1, "attempt": 1, "owner_uid": os.getuid()}
            if with_ids:
                record["crash_id"] = i + 1
            f.write(json.dumps(record) + "\n")
    os.chmod(os.path.join(state_dir, "crashes.jsonl"), 0o600)
    return nodeids


def lpctl_run(lpd, cwd, *args, timeout=180):
    result = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", *args], cwd=cwd,
                            capture_output=True, text=True, timeout=timeout, env=lpd.env())
    lines = [l for l in result.stdout.splitlines() if l.startswith("{")]
    return result.returncode, result.stdout + result.stderr, json.loads(lines[-1]) if lines else None


def all_pages(client, **fields):
    """Every crash.list page over a raw connection; asserts each reply's size."""
    pages, after = [], None
    while True:
        request = dict(fields)
        if after is not None:
            request["after"] = after
        client.send_raw(json.dumps(dict(request, id=1, op="crash.list")) + "\n")
        while b"\n" not in client.buf:
            chunk = client.sock.recv(1 << 20)
            assert chunk, "lpd closed the connection"
            client.buf += chunk
        line, client.buf = client.buf.split(b"\n", 1)
        assert len(line) + 1 <= LINE_LIMIT, f"a crash.list reply of {len(line)} bytes"
        reply = json.loads(line)
        assert reply["ok"], reply
        pages.append(reply["result"]["crashes"])
        after = reply["result"]["next"]
        if after is None:
            return pages


def test_crashes_larger_than_a_line_come_out_once_in_order(lpd_unstarted, work_dir):
    lpd = lpd_unstarted
    # 300 records with 4 KB tracebacks and ten of 64 KiB: about 1.9 MB.
    seeded = seed_crashes(lpd.state_dir, 300, big_every=30)
    assert os.path.getsize(os.path.join(lpd.state_dir, "crashes.jsonl")) > 1.5 * LINE_LIMIT
    lpd.start()

    # One real crash through lpctl run: the next id.
    write_tests(work_dir, "test_real.py", "import ctypes\ndef test_segv():\n    ctypes.string_at(0)\n")
    code, output, done = lpctl_run(lpd, work_dir, *pytest_args("test_real.py"))
    assert code == -signal.SIGSEGV, output
    expected = seeded + ["test_real.py::test_segv"]

    records = lpd.lpctl_json("crashes")
    assert [r["nodeid"] for r in records] == expected
    assert [r["crash_id"] for r in records] == list(range(1, len(expected) + 1))
    assert records[-1]["run_id"] == done["run_id"]
    assert len(records[30]["traceback"]) > 64 * 1024  # whole, not cut

    text = lpd.lpctl("crashes").stdout.splitlines()
    assert text[0].split()[:3] == ["TIME", "RUN", "SIGNAL"]
    # One line per record (its traceback follows, indented).
    heads = [line for line in text[1:] if line and not line[0].isspace()]
    assert len(heads) == len(expected)
    for line, nodeid in zip(heads, expected):
        assert nodeid in line

    # --run-id pages too, and only that run's records come.
    some_run = records[0]["run_id"]
    of_run = lpd.lpctl_json("crashes", "--run-id", some_run)
    assert [r["nodeid"] for r in of_run] == [r["nodeid"] for r in records if r["run_id"] == some_run]

    # Over the raw protocol: every reply under the line limit, pages by count and by bytes.
    client = lpd.client()
    pages = all_pages(client)
    assert len(pages) >= 4
    assert [r["crash_id"] for page in pages for r in page] == list(range(1, len(expected) + 1))
    pages = all_pages(client, limit=7)
    assert all(len(page) <= 7 for page in pages) and sum(map(len, pages)) == len(expected)
    # A run lpd keeps nothing of is not_found, never an empty list (stop 34's attack).
    reply = client.request("crash.list", run_id="no-such-run")
    assert reply["error"]["code"] == "not_found" and "no run no-such-run" in reply["error"]["message"], reply
    missing = lpd.lpctl("crashes", "--run-id", "no-such-run", check=False)
    assert missing.returncode == 1 and "no run no-such-run" in missing.stderr, missing
    for bad in ({"limit": 0}, {"limit": 1001}, {"after": -1}, {"limit": "ten"}):
        reply = client.request("crash.list", **bad)
        assert not reply["ok"] and reply["error"]["code"] == "bad_request", (bad, reply)
    client.close()


def test_crash_ids_survive_a_restart_and_keep_increasing(lpd_unstarted, work_dir):
    lpd = lpd_unstarted
    # Records from before crash_id: numbered in file order, the same way at every start.
    seed_crashes(lpd.state_dir, 5, with_ids=False)
    lpd.start()
    before = lpd.lpctl_json("crashes")
    assert [r["crash_id"] for r in before] == [1, 2, 3, 4, 5]
    write_tests(work_dir, "test_real.py", "import os\ndef test_abort():\n    os.abort()\n")
    lpctl_run(lpd, work_dir, *pytest_args("test_real.py"))
    first = lpd.lpctl_json("crashes")
    assert [r["crash_id"] for r in first] == [1, 2, 3, 4, 5, 6]
    lpd.stop()
    lpd.start()
    assert lpd.lpctl_json("crashes") == first
    # (A death without a traceback: no console echo child of lpd is alive
    # at the kill, which would hold lpd's lock for a moment.)
    write_tests(work_dir, "test_kill.py", "import os, signal\ndef test_kill():\n    os.kill(os.getpid(), signal.SIGKILL)\n")
    lpctl_run(lpd, work_dir, *pytest_args("test_kill.py"))
    lpd.kill9()
    lpd.start()
    after = lpd.lpctl_json("crashes")
    assert [r["crash_id"] for r in after] == [1, 2, 3, 4, 5, 6, 7]
    assert after[:6] == first


@pytest.mark.parametrize("how", ["retry", "xdist"])
def test_restart_does_not_record_a_crash_twice(lpd, work_dir, how):
    """A crash is recorded, lpd is killed -9 before the job ends, a new lpd
    re-adopts the job, and the job ends: one record of that crash (in
    crash.list, in the journal and in the run's --crash-log)."""
    fifo = os.path.join(work_dir, "go")
    os.mkfifo(fifo)
    write_tests(work_dir, "test_restart.py", f"""
import ctypes, os
def test_crash():
    ctypes.string_at(0)
def test_wait():
    open({fifo!r}).read()
""")
    crash_log = os.path.join(work_dir, "crash-log.jsonl")
    if how == "retry":
        # Attempt 1 dies in test_crash; attempt 2 (without it) waits in test_wait.
        args = ["--retry-crashed", "1", "--crash-log", crash_log, *pytest_args("test_restart.py")]
    else:
        # An xdist worker dies in test_crash; the other waits in test_wait.
        args = ["--crash-log", crash_log, *pytest_args("-n", "2", "test_restart.py")]
    events = EventWaiter(lpd, types=["crash", "test.start"])
    proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", *args],
                            cwd=work_dir, env=lpd.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    crash = events.wait("crash", nodeid="test_restart.py::test_crash")
    run_id = crash["run_id"]
    events.wait("test.start", nodeid="test_restart.py::test_wait", run_id=run_id)
    events.close()
    restart_while_waiting(lpd, fifo)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, out + err
    records = lpd.lpctl_json("crashes", "--run-id", run_id)
    assert [r["nodeid"] for r in records] == ["test_restart.py::test_crash"], records
    assert records[0]["crash_id"] == crash["crash_id"]
    journal = [json.loads(l) for l in open(os.path.join(lpd.state_dir, "crashes.jsonl"))]
    assert [j["crash_id"] for j in journal if j["run_id"] == run_id] == [crash["crash_id"]]
    with open(crash_log) as f:
        assert [json.loads(l)["nodeid"] for l in f] == ["test_restart.py::test_crash"]
    # The restarted lpd still knows the whole run: its report counts the crash.
    info = lpd.client().request("run.info", run_id=run_id)
    assert info["ok"] and info["result"]["crashes"] == 1, info


# A process of a run that outlives its connection: it registers, starts a
# test, closes its socket (its run ends: retention may remove it) and lives
# on until its stdin closes; lpd then finds it gone in a test.
LINGERING_WORKER = r'''
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
def request(**message):
    f.write((json.dumps(message) + "\n").encode()); f.flush()
    reply = json.loads(f.readline())
    assert reply.get("ok"), reply
    return reply["result"]
request(id=1, op="hello", role="shim", protocol=1)
run_id = request(id=2, op="run.register", argv=["pytest", "lingering"], cwd="/", hostname="ci")["run_id"]
f.write(b'{"op":"test.start","nodeid":"t.py::test_in_flight"}\n'); f.flush()
request(id=3, op="ping")
f.close(); s.close()
print(run_id, flush=True)
sys.stdin.read()
'''


def test_a_crash_after_its_run_was_removed_is_not_kept_and_a_restart_forgets_records_of_removed_runs(lpd_unstarted):
    """The attack: retention removed runs whose processes lived on; each
    process's later death added a record of a run that no longer existed,
    listed forever (1,000 of 2,000 records) with no run to prune it by."""
    lpd = lpd_unstarted
    seed_crashes(lpd.state_dir, 14)  # two records for each of seven runs
    gone = ["20261101-000000-000002", "20261101-000000-000005"]
    for run_id in gone:  # removed while lpd was down; their lines stay in crashes.jsonl
        shutil.rmtree(os.path.join(lpd.state_dir, "runs", run_id))
    lpd.start()
    kept = lpd.lpctl_json("crashes")
    assert len(kept) == 10
    assert not {r["run_id"] for r in kept} & set(gone)
    assert "forgot the crash records of 2 run(s) that retention or a prune removed" in lpd.log_text()

    worker = subprocess.Popen([PYTHON, "-c", LINGERING_WORKER, lpd.socket], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        lingering = worker.stdout.readline().strip()
        assert lingering, "the worker did not register"
        # A newer run ends; a prune that keeps one run removes the lingering one.
        newer = lpd.client()
        newer_id = newer.request("run.register", argv=["pytest", "newer"], cwd="/")["result"]["run_id"]
        assert newer.request("run.end")["ok"]
        newer.close()
        runs_dir = os.path.join(lpd.state_dir, "runs")
        removed = lpd.lpctl("prune", "--keep-runs", "1", "--keep-days", "0").stdout
        assert f"removed {lingering}" in removed, removed
        assert not os.path.exists(os.path.join(runs_dir, lingering))
        worker.stdin.close()  # the process ends; it was in a test
        assert worker.wait(timeout=60) == 0
        assert wait_until_in_directory(os.path.dirname(lpd.log_path),
                                       lambda: f"run {lingering}: crash of pid {worker.pid} not kept: the run was "
                                               f"removed" in lpd.log_text())
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert all(r["run_id"] != lingering for r in lpd.lpctl_json("crashes"))
    assert lpd.lpctl("crashes", "--run-id", lingering, check=False).returncode == 1
    assert newer_id in {r["run_id"] for r in lpd.lpctl_json("runs", "-a")}
