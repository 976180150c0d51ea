"""Issue 13: crash records at scale. `lpctl crashes` pages through a history
larger than the protocol's 1 MiB line limit (text and --json), crash_id is
stable and increasing across restarts, and a restarted lpd never records
one crash twice."""

import json
import os
import signal
import subprocess

import pytest

from lpd_harness import EventWaiter, LPCTL_BIN, PYTHON, restart_while_waiting, write_tests

LINE_LIMIT = 1024 * 1024



def pytest_args(*args):
    return ["--", PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]


def seed_crashes(state_dir, count, with_ids=True, big_every=0):
    """Writes crash records straight into a state directory lpd has not
    started on yet (as an earlier lpd would have left them): ~4 KB
    tracebacks, every `big_every`-th one 64 KiB (the most lpd keeps)."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    os.chmod(state_dir, 0o700)
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
