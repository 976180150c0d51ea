"""A full state directory (ENOSPC) on a real small file system: lpd's state
directory is a 4 MiB tmpfs, filled up by the test (issue 13). Then:
`lpctl run` and `lpctl ensure` fail with `unavailable` naming the directory
and the cause, exit 1, and leave nothing half-created (no ghost run, no
helper started); a pause is refused to the test, truthfully, and works once
there is room, surviving a restart; a crash record is served from memory at
once and written to crashes.jsonl, once, when space returns. lpd keeps
serving throughout. Needs root (mount).

EIO cannot be made on a tmpfs; lpd takes the same path for it (the message
is strerror of whatever errno the write got): see the unit test "the
full-disk message names the directory and the cause, whatever the errno"
(tests/unit/crash_retry_test.cpp)."""

import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import uuid
import xml.etree.ElementTree as ET

import pytest

from lpd_harness import (LPCTL_BIN, PYTHON, EventWaiter, Lpd, finish, short_tempdir, start_pytest,
                         wait_until_in_directory, write_tests)


@pytest.fixture
def full_disk_lpd():
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    root = short_tempdir()
    daemon = Lpd(root)
    os.makedirs(daemon.state_dir)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0711", "tmpfs", daemon.state_dir],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield daemon.start()
    finally:
        if daemon.proc is not None:
            daemon.stop()
        subprocess.run(["umount", daemon.state_dir])
        shutil.rmtree(root, ignore_errors=True)


def fill(directory):
    """Writes a file until the file system says ENOSPC; returns its path."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as e:
        assert e.errno == 28, e  # ENOSPC
    finally:
        os.close(fd)
    return path


def test_run_on_a_full_state_directory_is_unavailable_and_leaves_no_ghost(full_disk_lpd, tmp_path):
    lpd = full_disk_lpd
    filler = fill(lpd.state_dir)
    proc = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", "true"], cwd=str(tmp_path),
                          env=lpd.env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    expected = state_dir_failure(lpd, r"writing runs/[0-9]{8}-[0-9]{6}-[0-9a-f]{6}/run\.json")
    assert re.fullmatch(r"lpctl: run: " + expected + r" \[unavailable\]\n", proc.stderr), proc.stderr
    assert lpd.lpctl_json("runs", "-a") == [], "a failed start left a run behind"
    assert lpd.ping()

    os.unlink(filler)  # room again: the same command works
    again = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", "true"], cwd=str(tmp_path),
                           env=lpd.env(), capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert len(lpd.lpctl_json("runs", "-a")) == 1


# -- helpers ----------------------------------------------------------------

NO_SPACE = "No space left on device"

# The same fill() for the tests lpd runs: they fill the disk themselves, at
# the moment that matters (inside a test, after the run has started).
FILL_SOURCE = "import os\n\n" + inspect.getsource(fill)


def state_dir_failure(lpd, doing_pattern):
    """A regular expression for lpd's full-disk message: everything exact
    but what `doing_pattern` (itself a regular expression) leaves open."""
    return re.escape(f"cannot write lpd's state directory {lpd.state_dir}: {NO_SPACE} (") + doing_pattern + r"\)"


def journal_lines(lpd, nodeid):
    """The lines of crashes.jsonl about `nodeid`, parsed; a last line lpd is
    still writing (no newline yet) is left out."""
    try:
        with open(os.path.join(lpd.state_dir, "crashes.jsonl")) as f:
            lines = f.read().split("\n")[:-1]
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line and json.loads(line).get("nodeid") == nodeid]


def lpd_runs(lpd):
    return {r["run_id"]: r for r in lpd.lpctl_json("runs", "-a")}


# -- lpctl ensure ---------------------------------------------------------------


def test_ensure_on_a_full_state_directory_is_unavailable_and_starts_nothing(full_disk_lpd, tmp_path):
    lpd = full_disk_lpd
    started = tmp_path / "started"  # the helper's first act: it must never run
    helper = ["--", "sh", "-c", f'touch "{started}"; echo ready; exec sleep 600']
    filler = fill(lpd.state_dir)
    r = lpd.lpctl("ensure", "web", "--pattern", "ready", "--timeout", "60", *helper, check=False)
    assert r.returncode == 1, (r.stdout, r.stderr)
    expected = state_dir_failure(lpd, re.escape("starting process web: its log would not fit, ") +
                                 r"\d+ KiB free")
    assert re.fullmatch(r"lpctl: ensure: " + expected + r" \[unavailable\]\n", r.stderr), r.stderr
    assert "printed no line matching" not in r.stderr
    assert r.stdout == ""
    # Nothing half-created: no record, no process, no log.
    assert lpd.lpctl_json("ps", "-a")["processes"] == []
    assert not started.exists()
    assert os.listdir(os.path.join(lpd.state_dir, "logs")) == []
    assert lpd.ping()

    os.unlink(filler)  # room again: the same command works
    ready = lpd.lpctl_json("ensure", "web", "--pattern", "ready", "--timeout", "60", *helper)
    assert ready["state"] == "ready" and ready["reused"] is False
    assert started.exists()
    assert [p["name"] for p in lpd.lpctl_json("ps", "-a")["processes"]] == ["web"]
    lpd.lpctl("kill", "web")


def test_ensure_whose_helper_fills_the_disk_is_not_blamed_for_its_lost_ready_line(full_disk_lpd, tmp_path):
    """The disk fills after the start: the helper's ready line cannot reach
    its log, so the timeout says that, not "printed no line matching"."""
    lpd = full_disk_lpd
    filler = os.path.join(lpd.state_dir, "filler")
    helper = ["--", "sh", "-c", f'head -c 64M /dev/zero > "{filler}"; echo ready; exec sleep 600']
    r = lpd.lpctl("ensure", "web", "--pattern", "ready", "--timeout", "3", *helper, check=False)
    assert r.returncode == 1, (r.stdout, r.stderr)
    log_path = lpd.lpctl_json("ps", "-a")["processes"][0]["log_path"]
    expected = (re.escape(f"lpctl: ensure: cannot write lpd's state directory {lpd.state_dir}: {NO_SPACE}: ") +
                r"\d+ KiB free" + re.escape(f"; the output of process web may not have reached its log {log_path}, "
                                            "so lpd cannot tell what it printed; it is being killed; free some space "
                                            "and retry; its log is empty [unavailable]\n"))
    # Or lpd's own record of the helper could not be written first (which
    # write meets the full disk first depends on timing): as truthful, and
    # neither blames the helper.
    record_write = re.escape(f"lpctl: ensure: cannot write lpd's state directory {lpd.state_dir}: {NO_SPACE} "
                             "(writing procs/web.") + r"[0-9a-z.]+\.json\) \[unavailable\]\n"
    assert re.fullmatch(expected, r.stderr) or re.fullmatch(record_write, r.stderr), r.stderr
    assert "printed no line matching" not in r.stderr
    # It is being killed: `kill` waits for that end (or finds it over), and
    # then nothing claims it runs.
    lpd.lpctl("kill", "web")
    (web,) = lpd.lpctl_json("ps", "-a")["processes"]
    assert web["state"] == "killed", web
    assert not os.path.exists(f"/proc/{web['pid']}"), "the helper outlived its failed start"
    assert lpd.ping()


# -- pauses ---------------------------------------------------------------------

PAUSES = FILL_SOURCE + """
import json
import pytest
from lpd_pytest import LpdError, checkpoint

def test_pause_on_a_full_disk_then_with_room():
    filler = fill(os.environ["E2E_STATE_DIR"])
    with pytest.raises(LpdError) as refused:
        checkpoint(task="on a full disk", timeout=120)
    with open(os.environ["E2E_REFUSED"], "w") as f:
        json.dump({"code": refused.value.code, "message": refused.value.message}, f)
    os.unlink(filler)
    decision = checkpoint(task="with room", timeout=300)
    assert decision.result is True, decision
"""


def test_pause_refused_on_a_full_disk_then_works_and_survives_a_restart(full_disk_lpd, tmp_path):
    lpd = full_disk_lpd
    refused_path = tmp_path / "refused.json"
    write_tests(str(tmp_path), "test_full_pause.py", PAUSES)
    run_id = "e2e-" + uuid.uuid4().hex[:10]
    events = EventWaiter(lpd, types=["pause.created"], run_id=run_id)
    proc = start_pytest(lpd, str(tmp_path), "-s", run_id=run_id,
                        env_extra={"E2E_STATE_DIR": lpd.state_dir, "E2E_REFUSED": str(refused_path)})
    try:
        created = events.wait("pause.created", timeout=120)
    finally:
        events.close()
    # The first checkpoint() heard why, at once, and was not paused.
    refused = json.loads(refused_path.read_text())
    assert refused["code"] == "unavailable"
    assert re.fullmatch(state_dir_failure(lpd, re.escape(f"writing runs/{run_id}/pauses/") + r"[0-9a-f]{16}\.json"),
                        refused["message"]), refused
    # The second, with room again, is the only pause lpd knows.
    assert created["task"] == "with room" and created["status"] == "pending"
    listed = lpd.lpctl_json("ls", "-a", "--run-id", run_id)
    assert [p["pause_id"] for p in listed] == [created["pause_id"]]
    assert proc.poll() is None

    lpd.stop()
    lpd.start()
    assert [(p["pause_id"], p["status"]) for p in lpd.lpctl_json("ls", "--run-id", run_id)] == [
        (created["pause_id"], "pending")]
    assert run_id in lpd_runs(lpd)
    lpd.lpctl("resume", created["pause_id"], "--result", "true")
    code, output = finish(proc)
    assert code == 0, output
    assert "1 passed" in output


FAILURE_PAUSE = FILL_SOURCE + """
def test_fails_on_a_full_disk():
    fill(os.environ["E2E_STATE_DIR"])
    assert 1 == 2, "wrong answer"
"""


def test_failure_pause_on_a_full_disk_says_it_was_not_paused(full_disk_lpd, tmp_path):
    lpd = full_disk_lpd
    write_tests(str(tmp_path), "test_full_failure.py", FAILURE_PAUSE)
    run_id = "e2e-" + uuid.uuid4().hex[:10]
    proc = start_pytest(lpd, str(tmp_path), "--pause-on-failure", run_id=run_id,
                        env_extra={"E2E_STATE_DIR": lpd.state_dir})
    code, output = finish(proc, timeout=120)  # not held until the pause timeout (300 s)
    assert code == 1, output
    nodeid = "test_full_failure.py::test_fails_on_a_full_disk"
    expected = re.escape(f"lpd: {nodeid} was not paused: ") + state_dir_failure(
        lpd, re.escape(f"writing runs/{run_id}/pauses/") + r"[0-9a-f]{16}\.json") + re.escape(" [unavailable]")
    assert re.search("^" + expected + "$", output, re.MULTILINE), output
    assert "1 failed" in output
    assert lpd.lpctl_json("ls", "-a", "--run-id", run_id) == []
    assert lpd.ping()


def test_pytest_run_on_a_full_disk_is_refused_and_leaves_no_run(full_disk_lpd, tmp_path):
    """A run the shim registers itself (pytest without lpctl run): lpd
    cannot record it, so it refuses it rather than keep one that a restart
    would forget with its pauses."""
    lpd = full_disk_lpd
    write_tests(str(tmp_path), "test_ok.py", "def test_ok():\n    pass\n")
    run_id = "e2e-" + uuid.uuid4().hex[:10]
    filler = fill(lpd.state_dir)
    code, output = finish(start_pytest(lpd, str(tmp_path), "--pause-on-failure", run_id=run_id), timeout=120)
    assert code == 4, output  # pytest's usage error: the option cannot be honoured
    expected = re.escape("ERROR: --pause-on-failure needs lpd: ") + state_dir_failure(
        lpd, re.escape(f"writing runs/{run_id}/run.json")) + re.escape(" [unavailable]")
    assert re.search("^" + expected + "$", output, re.MULTILINE), output
    assert lpd_runs(lpd) == {}
    # Nothing half-created: not even the directory made for its run.json
    # (the attack found one left per refused register).
    assert not os.path.exists(os.path.join(lpd.state_dir, "runs", run_id))
    assert lpd.ping()
    os.unlink(filler)
    code, output = finish(start_pytest(lpd, str(tmp_path), "--pause-on-failure", run_id=run_id), timeout=120)
    assert code == 0, output
    assert run_id in lpd_runs(lpd)


# -- crash records ----------------------------------------------------------------

ABORTS = FILL_SOURCE + """
def test_aborts_on_a_full_disk():
    fill(os.environ["E2E_STATE_DIR"])
    os.abort()
"""


def test_crash_on_a_full_disk_is_served_at_once_and_written_once_when_space_returns(full_disk_lpd, tmp_path):
    lpd = full_disk_lpd
    nodeid = "test_full_abort.py::test_aborts_on_a_full_disk"
    write_tests(str(tmp_path), "test_full_abort.py", ABORTS)
    run = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", PYTHON, "-m", "pytest", "-p",
                          "no:cacheprovider", "-q", "test_full_abort.py"], cwd=str(tmp_path),
                         env=lpd.env(E2E_STATE_DIR=lpd.state_dir), capture_output=True, text=True, timeout=180)
    # The test itself died of SIGABRT: lpctl says so the way it always does.
    assert run.returncode == -signal.SIGABRT, (run.returncode, run.stdout, run.stderr)

    # Served from memory at once, though not on disk.
    crashes = lpd.lpctl_json("crashes")
    assert [c["nodeid"] for c in crashes] == [nodeid], crashes
    crash = crashes[0]
    assert crash["signal"] == signal.SIGABRT
    assert journal_lines(lpd, nodeid) == []
    assert "1 crash record(s) kept in memory, not yet in " in lpd.log_text()
    # status says so too: `lpd stop` warns with it that a stop now loses it.
    unwritten = json.loads(lpd.lpctl("--json", "status").stdout)["unwritten_crash_records"]
    assert unwritten["count"] == 1 and "No space left on device" in unwritten["cause"], unwritten
    plain = lpd.lpctl("status").stdout  # and without --json
    assert "unwritten:   1 crash record(s) held in memory, not yet on disk: " in plain, plain
    assert "`lpd stop` now would lose them" in plain, plain

    os.unlink(os.path.join(lpd.state_dir, "filler"))
    assert wait_until_in_directory(lpd.state_dir, lambda: journal_lines(lpd, nodeid)), lpd.log_text()
    written = journal_lines(lpd, nodeid)
    assert len(written) == 1 and written[0]["crash_id"] == crash["crash_id"], written
    # lpd logs it just after the write: wait for the line (the log is in lpd.root), not assume it is there.
    wrote = f"wrote 1 crash record(s) kept in memory to {lpd.state_dir}/crashes.jsonl"
    assert wait_until_in_directory(lpd.root, lambda: wrote in lpd.log_text()), lpd.log_text()
    assert lpd.lpctl_json("crashes") == crashes  # the same record, once
    assert json.loads(lpd.lpctl("--json", "status").stdout)["unwritten_crash_records"]["count"] == 0
    assert "unwritten:" not in lpd.lpctl("status").stdout

    lpd.stop()  # its last try has nothing left to write
    assert len(journal_lines(lpd, nodeid)) == 1
    lpd.start()
    assert lpd.lpctl_json("crashes") == crashes


FILLS_THEN_PASSES = FILL_SOURCE + """
import pytest


def test_a_fills_the_disk():
    fill(os.environ["E2E_STATE_DIR"])


@pytest.mark.parametrize("i", range(60))
def test_b_passes_on_a_full_disk(i):
    pass
"""


def run_journal_finishes(lpd, run_id):
    """The test.finish lines of the run's own journal, parsed; a last line
    lpd is still writing (no newline yet) is left out."""
    path = os.path.join(lpd.state_dir, "runs", run_id, "events.jsonl")
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split("\n")[:-1] if '"event":"test.finish"' in line]


def test_results_journaled_on_a_full_disk_are_written_when_space_returns_and_survive_a_restart(full_disk_lpd,
                                                                                              tmp_path):
    """The attack on issue 13: tests that finished while the disk was full
    were lost from the journals for good, and a restart then judged the run
    again from what was left (passed tests became "never ran")."""
    lpd = full_disk_lpd
    write_tests(str(tmp_path), "test_fills.py", FILLS_THEN_PASSES)
    run = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--", PYTHON, "-m", "pytest", "-p",
                          "no:cacheprovider", "-p", "no:terminal", "test_fills.py"], cwd=str(tmp_path),
                         env=lpd.env(E2E_STATE_DIR=lpd.state_dir), capture_output=True, text=True, timeout=180)
    done = json.loads([line for line in run.stdout.splitlines() if line.startswith("{")][-1])
    run_id = done["run_id"]
    before = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "report", run_id, "--junit", str(tmp_path / "a.xml")],
                            capture_output=True, text=True, timeout=60)
    assert before.returncode in (0, 1), before.stderr
    cases_before = sorted((tc.get("name"), [c.tag for c in tc]) for tc in ET.parse(tmp_path / "a.xml").iter("testcase"))
    assert sum(1 for name, _ in cases_before if name.startswith("test_b_passes")) == 60, cases_before
    assert len(run_journal_finishes(lpd, run_id)) < 61  # the disk refused some

    os.unlink(os.path.join(lpd.state_dir, "filler"))
    # Written once there is room (tried again every second), each line once.
    assert wait_until_in_directory(os.path.join(lpd.state_dir, "runs", run_id),
                                   lambda: len(run_journal_finishes(lpd, run_id)) == 61), \
        (len(run_journal_finishes(lpd, run_id)), lpd.log_text()[-3000:])
    assert sorted(e["nodeid"] for e in run_journal_finishes(lpd, run_id)) == sorted(
        ["test_fills.py::test_a_fills_the_disk"] + [f"test_fills.py::test_b_passes_on_a_full_disk[{i}]" for i in range(60)])
    assert "its lines are kept and written when they can be" in lpd.log_text()

    def job_done():
        try:
            with open(os.path.join(lpd.state_dir, "runs", run_id, "job.json")) as f:
                return json.load(f).get("state") == "done"
        except (OSError, ValueError):
            return False
    # The run's end too (job.json, run.json), tried again every second.
    assert wait_until_in_directory(os.path.join(lpd.state_dir, "runs", run_id), job_done), lpd.log_text()[-3000:]

    lpd.stop()
    lpd.start()
    after = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "report", run_id, "--junit", str(tmp_path / "b.xml")],
                           capture_output=True, text=True, timeout=60)
    assert after.returncode == before.returncode, (before.stdout, after.stdout, after.stderr)
    cases_after = sorted((tc.get("name"), [c.tag for c in tc]) for tc in ET.parse(tmp_path / "b.xml").iter("testcase"))
    assert cases_after == cases_before  # the same tests, the same outcomes: nothing "never ran"
    finishes = [json.loads(line)["data"]["nodeid"] for line in lpd.lpctl(
        "--json", "events", "--run-id", run_id, "--type", "test.finish").stdout.splitlines()]
    assert len(finishes) == 61 and len(set(finishes)) == 61
    # Nothing half-made is left of the writes the full disk refused (the
    # attacker found lpd-monitor's exit.json.new).
    leftovers = [os.path.join(d, f) for d, _, files in os.walk(lpd.state_dir) for f in files if f.endswith(".new")]
    assert leftovers == []


def test_seqs_never_repeat_after_a_stop_on_a_full_disk(full_disk_lpd):
    """The attack on issue 13: on a full disk lpd went on using seqs past a
    block reservation (events/seq.json) it could not write, and after a
    restart gave the same seqs again (65,537-80,005 twice). The record is
    now overwritten in place, which needs no free space; 70,000 events cross
    a 65,536-seq block while the disk is full."""
    lpd = full_disk_lpd
    client = lpd.client()
    run_id = client.request("run.register", argv=["pytest"], cwd="/src", hostname="ci")["result"]["run_id"]
    fill(lpd.state_dir)
    lines = "".join(json.dumps({"op": "test.start", "nodeid": f"t.py::test_{i}"}) + "\n" for i in range(70_000))
    client.send_raw(lines + json.dumps({"op": "test.start", "nodeid": "t.py::test_last"}) + "\n")
    assert client.request("ping")["ok"]  # read in order: every test.start before it was taken
    events = [json.loads(line) for line in lpd.lpctl("--json", "events", "--run-id", run_id, "--type",
                                                      "test.start").stdout.splitlines()]
    assert events[-1]["data"]["nodeid"] == "t.py::test_last"
    last_seq = events[-1]["data"]["seq"]
    assert last_seq > 70_000
    client.close()
    lpd.stop()
    # What the full disk refused is lost with that lpd: it says so, per run.
    assert re.search(r"lpd stops with [0-9]+ bytes of run " + re.escape(run_id) + r"'s journal unwritten \(the state "
                     r"directory " + re.escape(lpd.state_dir) + r" refuses writes\): those events and results are "
                     r"lost", lpd.log_text()), lpd.log_text()[-3000:]
    os.unlink(os.path.join(lpd.state_dir, "filler"))
    lpd.start()
    after = lpd.client()
    later_run = after.request("run.register", argv=["pytest"], cwd="/src", hostname="ci")["result"]["run_id"]
    after.close()
    started = [json.loads(line) for line in lpd.lpctl("--json", "events", "--run-id", later_run).stdout.splitlines()]
    assert started and started[0]["data"]["seq"] > last_seq, (started[:1], last_seq)
    assert "cannot record the event seq reservation" not in lpd.log_text()


def test_a_command_whose_output_fills_the_disk_ends_with_the_disk_named(full_disk_lpd, tmp_path):
    """The attack on issue 13: the command's output goes straight into its
    log in lpd's state directory, so when that fills up its own writes fail
    (here: print raises OSError, exit 1), and lpctl said only "exited with
    code 1". Now the verdict notes that the state directory had no space
    left when the command ended (not that a write failed, which lpd cannot
    see)."""
    lpd = full_disk_lpd
    script = FILL_SOURCE + ("\nimport sys\nprint('before', flush=True)\nfill(os.environ['E2E_STATE_DIR'])\n"
                            "print('x' * 100000, flush=True)\n")
    with open(tmp_path / "fills.py", "w") as f:
        f.write(script)
    proc = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", PYTHON, "fills.py"], cwd=str(tmp_path),
                          env=lpd.env(E2E_STATE_DIR=lpd.state_dir), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    # Python's own error went to the same full log: lost, so lpd says it.
    assert re.search(r"exited with code 1.*; note: lpd's state directory " + re.escape(lpd.state_dir) +
                     r" had no space left when the command ended: its output log there could take no more output",
                     proc.stderr), proc.stderr
    os.unlink(os.path.join(lpd.state_dir, "filler"))
    # With room, the same kind of run says nothing of a disk.
    ok = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", PYTHON, "-c", "print('fine')"],
                        cwd=str(tmp_path), env=lpd.env(), capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "state directory" not in ok.stderr, ok.stderr


ENDS_ON_A_FULL_DISK = FILL_SOURCE + """
import ctypes


def test_a_fills_the_disk():
    fill(os.environ["E2E_STATE_DIR"])


def test_b_fails():
    assert 1 == 2


def test_c_passes():
    pass


def test_d_crashes():
    ctypes.string_at(0)


def test_e_never_runs():
    pass
"""


def test_a_run_that_ended_on_a_full_disk_keeps_its_verdict_and_report_across_a_stop(full_disk_lpd, tmp_path):
    """The attack on issue 13: a run that ended while the disk was full had
    its end (job.json), crash record and last results only in lpd's memory;
    `lpd stop` lost them, and the next lpd found the run "in progress",
    settled it again from what was written (the crash pinned on no test,
    "while lpd was restarting"; tests "not run") and rewrote the user's
    --junit with that. lpd now holds a reserve of the state directory's
    blocks and gives it back at a stop for those last writes."""
    lpd = full_disk_lpd
    write_tests(str(tmp_path), "test_ends.py", ENDS_ON_A_FULL_DISK)
    junit = tmp_path / "junit.xml"
    run = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--junit", str(junit), "--", PYTHON,
                          "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_ends.py"], cwd=str(tmp_path),
                         env=lpd.env(E2E_STATE_DIR=lpd.state_dir), capture_output=True, text=True, timeout=180)
    done = json.loads([line for line in run.stdout.splitlines() if line.startswith("{")][-1])
    run_id = done["run_id"]
    assert run.returncode == -signal.SIGSEGV, run.stderr[-3000:]
    with open(junit, "rb") as f:
        written = f.read()

    def cases(xml_bytes):
        return sorted((tc.get("name"), [(c.tag, c.get("message", "")[:60]) for c in tc])
                      for tc in ET.fromstring(xml_bytes).iter("testcase"))

    before = cases(written)
    assert [name for name, _ in before] == ["test_a_fills_the_disk", "test_b_fails", "test_c_passes",
                                            "test_d_crashes", "test_e_never_runs"], before
    assert os.path.exists(os.path.join(lpd.state_dir, "filler"))  # still full
    lpd.stop()
    os.unlink(os.path.join(lpd.state_dir, "filler"))
    lpd.start()
    again = lpd.lpctl("report", run_id, "--junit", "-", check=False)
    assert again.returncode == 0, again.stderr
    assert cases(again.stdout.encode()) == before, lpd.log_text()[-3000:]
    with open(junit, "rb") as f:
        assert f.read() == written  # the user's file is not rewritten
    (crash,) = lpd.lpctl_json("crashes", "--run-id", run_id)
    assert crash["nodeid"] == "test_ends.py::test_d_crashes", crash
    (listed,) = [r for r in lpd.lpctl_json("runs", "-a") if r["run_id"] == run_id]
    assert (listed["status"], listed["returncode"], listed["result"]) == ("ended", 139, "crashed"), listed
