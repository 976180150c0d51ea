"""h13out (issue 13): a run's output log cannot fill lpd's state directory.

`lpctl run -- yes` wrote 3.8 GB into runs/<id>/output.log in 3 s. lpd now
frees the middle of a run's output past --run-output-max while the command
writes on (its first lines and its newest stay), and of one user's kept
runs past --run-outputs-per-user-max; every reader is told how many bytes
were dropped (a line where the gap is, `dropped_bytes` on run.output, run.info,
the run.output_dropped event, a failed command's JUnit <system-out>); the
bound holds across an lpd killed with SIGKILL and restarted mid-run.

Every wait is an event: lpd's run.output_dropped, the command's lines on a
FIFO the test reads, FIFO gates the test opens; never a sleep."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET

import pytest

from lpd_harness import LPCTL_BIN, LPD_BIN, EventWaiter, Lpd, killed_if_left_running, read_line_with_timeout

MIB = 1024 * 1024
CAP = 1 * MIB
HEAD = CAP // 8  # what a cut keeps of the start (run_output_caps)
FIRST = b"FIRST LINE: pytest's collection errors would be here\n"
LINE = 100  # bytes per burst line

# The command: its first line, then (once `gate1` opens) a burst of numbered
# lines, a BURST-DONE line, a word on the `said` FIFO, then (once `gate2`
# opens) a last line, and exit 3 (a failed command: its JUnit gets output).
WRITER = r'''
import os, sys
gate1, said, gate2, mib = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(said + ".pid", "w") as f:  # for the test's teardown, should it fail midway
    f.write(str(os.getpid()))
out = sys.stdout.buffer
out.write(%r)
out.flush()
if gate1 != "-":
    os.close(os.open(gate1, os.O_RDONLY))
n = mib * 1024 * 1024 // %d
for i in range(n):
    out.write(b"line %%08d %%s\n" %% (i, b"x" * 85))
out.write(b"BURST-DONE %%d\n" %% (n - 1))
out.flush()
with open(said, "w") as f:
    f.write("burst done\n")
os.close(os.open(gate2, os.O_RDONLY))
out.write(b"last line\n")
out.flush()
sys.exit(3)
''' % (FIRST, LINE)


def burst_size(mib):
    n = mib * MIB // LINE
    return len(FIRST) + n * LINE + len(b"BURST-DONE %d\n" % (n - 1)), n - 1


def disk_use(path):
    return os.stat(path).st_blocks * 512


def output_log(lpd, run_id):
    return os.path.join(lpd.state_dir, "runs", run_id, "output.log")


def holes(path):
    """[0, head_end) kept, [head_end, kept_from) freed: the file's holes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        head_end = min(os.lseek(fd, 0, os.SEEK_HOLE), size)
        try:
            kept_from = os.lseek(fd, head_end, os.SEEK_DATA)
        except OSError:
            kept_from = size
        return head_end, kept_from
    finally:
        os.close(fd)


class Fifos:
    def __init__(self, where):
        self.gate1, self.said, self.gate2 = (os.path.join(where, n) for n in ("gate1", "said", "gate2"))
        for path in (self.gate1, self.said, self.gate2):
            os.mkfifo(path)
        self.script = os.path.join(where, "writer.py")
        with open(self.script, "w") as f:
            f.write(WRITER)

    def argv(self, mib, gate1=True):
        return [sys.executable, self.script, self.gate1 if gate1 else "-", self.said, self.gate2, str(mib)]

    def open_gate(self, path):
        # Opened for writing once the command waits on it (it blocks until then).
        fd = os.open(path, os.O_WRONLY)
        os.close(fd)

    def kill_writer(self):
        """Teardown: a writer left waiting on a FIFO by a failed test is killed."""
        try:
            with open(self.said + ".pid") as f:
                os.kill(int(f.read()), signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def wait_said(self):
        with open(self.said) as f:  # blocks until the command opens it, then reads its word
            assert f.readline() == "burst done\n"


class DropWatch(EventWaiter):
    """A subscription to run.output_dropped, opened before the writes."""

    def __init__(self, lpd):
        super().__init__(lpd, types=["run.output_dropped"])

    def wait_for(self, run_id, condition, timeout=300):
        """The first run.output_dropped of `run_id` whose record meets `condition`."""
        return self.wait("run.output_dropped", timeout=timeout, condition=condition, run_id=run_id)


def attach_until(lpd, run_id, marker, offset=0):
    """The run's output as run.attach replays it from `offset`, read until
    `marker`; with the reply and the pushes' dropped_bytes."""
    client = lpd.client()
    reply = client.request("run.attach", run_id=run_id, offset=offset)
    assert reply["ok"], reply
    text, dropped = "", []
    while marker not in text:
        msg = client.read_message(timeout=120)
        assert msg is not None, "lpd closed the stream"
        if msg.get("event") == "run.output":
            text += msg["data"]["data"]
            if "dropped_bytes" in msg["data"]:
                dropped.append(msg["data"]["dropped_bytes"])
    client.close()
    return reply["result"], text, dropped


NOTE = re.compile(r"\[lpd: (\d+) bytes of this run's output were dropped here: its log passed its size cap "
                  r"\(lpd start --run-output-max, --run-outputs-per-user-max\)\]\n")


def assert_head_note_and_newest(text, last, dropped):
    """What a reader is shown of a cut output: its first lines, one note
    saying how much was dropped, then the newest lines up to BURST-DONE."""
    assert "\0" not in text, "the freed middle was sent as zeros"
    assert text.startswith(FIRST.decode())
    notes = NOTE.findall(text)
    assert notes == [str(dropped)], notes
    before, after = NOTE.split(text, maxsplit=1)[0], text.split("]\n", 1)[1]
    assert len(before) <= HEAD + 1  # the head, and the newline that puts the note on a line of its own
    assert after.endswith(f"line {last:08d} {'x' * 85}\nBURST-DONE {last}\n") or \
        f"line {last:08d} {'x' * 85}\nBURST-DONE {last}\n" in after
    # Newest lines are whole and consecutive up to the end.
    numbers = [int(l.split()[1]) for l in after.splitlines() if l.startswith("line ")]
    assert numbers and numbers == list(range(numbers[0], last + 1))


@pytest.fixture
def fifos(work_dir):
    f = Fifos(work_dir)
    yield f
    f.kill_writer()


@pytest.fixture
def lpd_capped():
    d = Lpd()
    d.start("--run-output-max", str(CAP))
    yield d
    if d.proc is not None:
        d.stop()
    shutil.rmtree(d.root, ignore_errors=True)


def test_a_flood_stays_within_the_cap_while_the_run_runs_and_readers_are_told(lpd_capped, work_dir, fifos):
    lpd = lpd_capped
    watch = DropWatch(lpd)
    junit = os.path.join(work_dir, "out.xml")
    started = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--detach", "--junit", junit, "--",
                              *fifos.argv(24, gate1=False)], cwd=work_dir, env=lpd.env(), capture_output=True,
                             text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["run_id"]
    log = output_log(lpd, run_id)
    fifos.wait_said()  # 24 times the cap written; the command now waits on gate2
    size, last = burst_size(24)
    assert os.stat(log).st_size == size  # offsets keep counting what was freed
    # Freed holes only grow: once lpd says it dropped this much, the log is within the cap.
    event = watch.wait_for(run_id, lambda d: d["dropped_bytes"] >= size - CAP)
    assert disk_use(log) <= CAP, disk_use(log)
    assert event["head_bytes"] == HEAD
    client = lpd.client()
    info = client.request("run.info", run_id=run_id)["result"]
    client.close()
    assert info["state"] == "in-progress", info  # capped while it runs, not at its end
    head_end, kept_from = holes(log)
    assert head_end == HEAD
    assert info["output_dropped_bytes"] == kept_from - head_end >= size - CAP
    assert info["output_bytes"] == size
    # A reader from the start: the first lines, one note with the count, the newest lines.
    reply, text, pushed = attach_until(lpd, run_id, f"BURST-DONE {last}\n")
    assert reply["output_dropped_bytes"] == kept_from - head_end
    assert pushed == [kept_from - head_end]
    assert_head_note_and_newest(text, last, kept_from - head_end)
    assert "run" in lpd.log_text() and "is over its cap (--run-output-max" in lpd.log_text()

    fifos.open_gate(fifos.gate2)
    done = lpd.lpctl("--json", "events", "--follow", "--run-id", run_id, timeout=120)  # ends with run.ended
    assert "run.ended" in done.stdout
    # The JUnit of this non-pytest command: its newest output, saying what the cap dropped.
    (case,) = ET.parse(junit).getroot().iter("testcase")
    assert case.find("error") is not None
    system_out = case.find("system-out").text
    assert "\0" not in system_out
    assert f"{kept_from - head_end} of them were dropped when the log passed its size cap" in system_out
    assert system_out.endswith(f"BURST-DONE {last}\nlast line\n")
    assert len(system_out.encode()) <= 64 * 1024
    watch.close()


def test_the_cap_holds_across_a_kill9_restart_and_lpctl_run_replays_with_the_count(lpd_capped, work_dir, fifos):
    lpd = lpd_capped
    junit = os.path.join(work_dir, "out.xml")
    proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "run", "--junit", junit, "--", *fifos.argv(16)],
                            cwd=work_dir, env=lpd.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out_chunks = []
    with killed_if_left_running(proc):
        first = read_line_with_timeout(proc.stdout, 120)
        assert first == FIRST, first
        out_chunks.append(first)
        (run,) = [r for r in lpd.lpctl_json("runs") if r.get("active", True)]
        run_id = run["run_id"]
        log = output_log(lpd, run_id)
        lpd.kill9()
        # lpd is gone: nobody caps the command's writes meanwhile.
        fifos.open_gate(fifos.gate1)
        fifos.wait_said()
        size, last = burst_size(16)
        assert disk_use(log) > 8 * MIB
        lpd.start("--run-output-max", str(CAP))
        # The restarted lpd cut it before serving anyone.
        assert disk_use(log) <= CAP, disk_use(log)
        head_end, kept_from = holes(log)
        assert head_end == HEAD and kept_from - head_end >= size - CAP
        # lpctl run follows again from where it was: the rest of the head, the note, the newest lines.
        reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()))
        reader.start()
        # Once it printed BURST-DONE the command may end (the replay is done: read to its end).
        fifos.open_gate(fifos.gate2)
        proc.wait(timeout=120)
        reader.join(timeout=120)
    assert proc.returncode == 3, proc.stderr.read().decode()[-2000:]
    text = b"".join(out_chunks).decode()
    assert text.endswith("last line\n")
    assert_head_note_and_newest(text[: -len("last line\n")], last, kept_from - head_end)
    system_out = next(ET.parse(junit).getroot().iter("testcase")).find("system-out").text
    assert f"{kept_from - head_end} of them were dropped" in system_out


def test_a_run_under_the_cap_is_untouched_and_its_junit_has_its_whole_output(lpd_capped, work_dir):
    lpd = lpd_capped
    junit = os.path.join(work_dir, "small.xml")
    script = "for i in range(3000): print('small %05d' % i)\nraise SystemExit(1)\n"  # about 35 KB
    result = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--junit", junit, "--", sys.executable, "-c",
                             script], cwd=work_dir, env=lpd.env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    expected = "".join("small %05d\n" % i for i in range(3000))
    assert result.stdout == expected
    assert "[lpd:" not in result.stdout + result.stderr
    runs = [r for r in lpd.lpctl_json("runs", "-a") if r["argv"][:2] == [sys.executable, "-c"]]
    run_id = runs[-1]["run_id"]
    log = output_log(lpd, run_id)
    with open(log) as f:
        assert f.read() == expected
    assert holes(log) == (len(expected), len(expected))
    client = lpd.client()
    info = client.request("run.info", run_id=run_id)["result"]
    client.close()
    assert info["output_dropped_bytes"] == 0 and info["output_bytes"] == len(expected)
    (case,) = ET.parse(junit).getroot().iter("testcase")
    assert case.find("system-out").text == expected  # the whole output, no note
    # A command that passes gets none (pytest's junit_logging default).
    ok_junit = os.path.join(work_dir, "ok.xml")
    lpd.lpctl("run", "--junit", ok_junit, "--", "sh", "-c", "echo fine")
    (ok_case,) = ET.parse(ok_junit).getroot().iter("testcase")
    assert ok_case.find("system-out") is None


def test_one_users_kept_outputs_are_bounded_together_oldest_first(lpd_unstarted, work_dir):
    lpd = lpd_unstarted
    lpd.start("--run-output-max", str(8 * MIB), "--run-outputs-per-user-max", str(2 * MIB + MIB // 2))
    watch = DropWatch(lpd)
    script = "import sys\nfor i in range(10240): sys.stdout.write('run %s %05d %s\\n' % (sys.argv[1], i, 'y' * 88))\n"
    ids = []
    for name in ("a", "b", "c"):  # 1 MiB each: over 2.5 MiB together once the third ends
        result = lpd.lpctl("--json", "run", "--name", name, "--", sys.executable, "-c", script, name)
        ids.append(next(r["run_id"] for r in lpd.lpctl_json("runs", "-a") if r["run_id"].startswith(name + "-")))
    # The oldest ended output was emptied when the third ended (before its run.done).
    event = watch.wait_for(ids[0], lambda d: d["dropped_bytes"] == d["size"])
    assert event["disk_bytes"] == 0
    assert disk_use(output_log(lpd, ids[0])) == 0
    total = sum(disk_use(output_log(lpd, i)) for i in ids)
    assert total <= 2 * MIB + MIB // 2
    # The others are whole.
    for run_id, name in zip(ids[1:], ("b", "c")):
        with open(output_log(lpd, run_id)) as f:
            text = f.read()
        assert text.startswith(f"run {name} 00000 ") and text.endswith(f"run {name} 10239 {'y' * 88}\n")
    # A replay of the emptied one says so instead of showing nothing.
    client = lpd.client()
    assert client.request("run.attach", run_id=ids[0])["ok"]
    shown = ""
    while True:
        msg = client.read_message(timeout=60)
        assert msg is not None
        if msg.get("event") == "run.output":
            shown += msg["data"]["data"]
        if msg.get("event") == "run.done":
            break
    client.close()
    assert shown == f"[lpd: {event['size']} bytes of this run's output were dropped here: its log passed its size " \
                    "cap (lpd start --run-output-max, --run-outputs-per-user-max)]\n"
    watch.close()


def test_the_options_are_in_help_and_checked():
    d = Lpd()
    try:
        help_text = subprocess.run([LPD_BIN, "start", "--help"], capture_output=True, text=True).stdout
        assert "--run-output-max" in help_text and "--run-outputs-per-user-max" in help_text
        bad = subprocess.run([LPD_BIN, "start", "--foreground", "--socket", d.socket, "--state-dir", d.state_dir,
                              "--run-output-max", "100"], capture_output=True, text=True, timeout=60)
        assert bad.returncode != 0 and "at least" in bad.stderr
    finally:
        shutil.rmtree(d.root, ignore_errors=True)
