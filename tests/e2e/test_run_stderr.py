"""Issue 18: when lpctl's stdout is not a terminal, a supervised command's
stderr stays stderr. lpd keeps it in a log of its own (runs/<id>/stderr.log),
run.attach streams it apart ("stream": "stderr", with its own offset), so
`lpctl run` and `lpctl attach` write it to their own stderr, a restarted lpd
resumes both streams where lpctl was, the failed command's JUnit testcase
carries it as <system-err>, and the run output cap bounds it as it bounds
stdout. A client that does not ask (pytest-relay-run's job text) still gets
both in one log, in the order written. Waits are FIFOs and lines read,
never durations."""

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET

import pytest

from lpd_harness import LPCTL_BIN, Lpd, killed_if_left_running, read_line_with_timeout, start_attach
from lpd_harness import standalone_env as run_env, standalone_lpctl as lpctl


def last_run_id(lpd):
    return lpd.lpctl_json("runs", "-a")[-1]["run_id"]


class Lines:
    """Every line of a text pipe, read by a thread into a queue: `wait_for`
    can wait for a line while the next ones sit in the pipe's buffer (a
    select() on a buffered stream would not see them)."""

    def __init__(self, stream):
        self.lines = queue.Queue()
        self.seen = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, wanted, timeout=120):
        while True:
            line = self.lines.get(timeout=timeout)
            assert line is not None, f"stream ended before {wanted!r}; read {self.seen!r}"
            self.seen.append(line)
            if line == wanted:
                return

    def rest(self, timeout=120):
        """Everything read, once the stream ended."""
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                return "".join(self.seen)
            self.seen.append(line)


def test_through_pipes_stdout_and_stderr_stay_apart(lpd, work_dir):
    junit = os.path.join(work_dir, "out.xml")
    r = lpctl(lpd, "run", "--junit", junit, "--", "sh", "-c",
              "echo out1; echo err1 >&2; echo out2; printf err-partial >&2; exit 3", cwd=work_dir)
    assert r.returncode == 3, r
    assert r.stdout == "out1\nout2\n", r.stdout
    # The command's stderr, between lpctl's first line and its verdict; its
    # unfinished last line is ended before lpctl's own lines follow.
    assert "\nerr1\nerr-partial\nlpctl: " in r.stderr, r.stderr
    assert r.stderr.startswith("lpctl: run "), r.stderr
    assert ", stderr " in r.stderr.splitlines()[0]
    run_id = last_run_id(lpd)
    info = lpd.run_info(run_id)
    assert info["stderr_log"].endswith(f"/runs/{run_id}/stderr.log"), info
    assert info["stderr_bytes"] == len("err1\nerr-partial") and info["stderr_dropped_bytes"] == 0, info
    with open(info["log"]) as f:
        assert f.read() == "out1\nout2\n"
    # The failed command's testcase: stdout as <system-out>, stderr as <system-err>.
    (case,) = ET.parse(junit).getroot().iter("testcase")
    assert case.find("error") is not None
    assert case.find("system-out").text == "out1\nout2\n"
    assert case.find("system-err").text == "err1\nerr-partial"


def test_a_command_killed_by_a_signal_keeps_its_output_in_the_junit(lpd, work_dir):
    """Attack on issue 18 (5): a crashed command's testcase had only the
    crash, none of the output it wrote before."""
    junit = os.path.join(work_dir, "crash.xml")
    r = lpctl(lpd, "run", "--junit", junit, "--", "sh", "-c", "echo before; echo errbefore >&2; kill -SEGV $$",
              cwd=work_dir)
    assert r.returncode == -11, r
    (case,) = ET.parse(junit).getroot().iter("testcase")
    assert case.find("error") is not None and case.find("error").get("type") == "crash", ET.tostring(case)
    assert case.find("system-out").text == "before\n"
    assert case.find("system-err").text == "errbefore\n"


def test_attach_follows_both_streams_live_and_replays_them_apart(lpd, work_dir):
    fifo = os.path.join(work_dir, "go")
    os.mkfifo(fifo)
    started = lpctl(lpd, "run", "--detach", "--", "sh", "-c",
                    'echo o1; echo e1 >&2; read word < "$1"; echo o2; echo "e2 $word" >&2; exit 4', "sh", fifo,
                    cwd=work_dir)
    assert started.returncode == 0, started
    run_id = started.stdout.strip()
    with killed_if_left_running(start_attach(lpd, run_id, run_env(lpd))) as attach:
        # Both arrive, each on its own stream, while the run waits on the FIFO.
        assert read_line_with_timeout(attach.stdout, 60) == "o1\n"
        assert read_line_with_timeout(attach.stderr, 60) == "e1\n"
        with open(fifo, "w") as f:
            f.write("go\n")
        rest, err = attach.communicate(timeout=120)
    assert attach.returncode == 4, (rest, err)
    assert rest == "o2\n", rest
    assert err.startswith("e2 go\n"), err
    assert f"run {run_id} exited with code 4" in err
    # A replay of the finished run: the whole of each stream, still apart.
    again = lpctl(lpd, "attach", run_id)
    assert again.returncode == 4, again
    assert again.stdout == "o1\no2\n", again.stdout
    assert again.stderr.startswith("e1\ne2 go\n"), again.stderr


def test_a_restarted_lpd_resumes_both_streams_where_lpctl_was(lpd, work_dir):
    fifo = os.path.join(work_dir, "go")
    os.mkfifo(fifo)
    proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "run", "--", "sh", "-c",
                             'echo o1; echo e1 >&2; read word < "$1"; echo o2; echo e2 >&2; exit 6', "sh", fifo],
                            cwd=work_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=run_env(lpd))
    with killed_if_left_running(proc):
        assert read_line_with_timeout(proc.stdout, 120) == "o1\n"
        err_lines = Lines(proc.stderr)
        err_lines.wait_for("e1\n")
        lpd.kill9()
        lpd.start()
        with open(fifo, "w") as f:  # the command goes on once lpd is back
            f.write("go\n")
        out = proc.stdout.read()
        proc.wait(timeout=180)
        err = err_lines.rest()
    assert proc.returncode == 6, err
    # Nothing lost, nothing twice: lpctl asked for each stream from its own offset.
    assert out == "o2\n", out
    assert err.count("e1\n") == 1 and err.count("e2\n") == 1, err


@pytest.fixture
def lpd_capped():
    d = Lpd()
    d.start("--run-output-max", str(1024 * 1024))
    yield d
    if d.proc is not None:
        d.stop()
    shutil.rmtree(d.root, ignore_errors=True)


def test_the_stderr_log_is_capped_as_stdout_is(lpd_capped, work_dir):
    lpd = lpd_capped
    watch = lpd.client()
    assert watch.request("events.subscribe", types=["run.output_dropped"])["ok"]
    # 8 MiB to stderr, under a 1 MiB cap per log.
    script = "import sys\nline = 'e' * 1023 + '\\n'\nfor _ in range(8 * 1024): sys.stderr.write(line)\nprint('done')\n"
    r = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", sys.executable, "-c", script], cwd=work_dir,
                       capture_output=True, text=True, timeout=240, env=run_env(lpd))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == "done\n"
    assert "bytes of this run's output were dropped here" in r.stderr
    run_id = last_run_id(lpd)
    while True:
        msg = watch.read_message(timeout=120)
        assert msg is not None, "lpd closed the event stream"
        if msg.get("event") == "run.output_dropped" and msg["data"]["run_id"] == run_id:
            assert msg["data"]["stream"] == "stderr", msg
            break
    watch.close()
    info = lpd.run_info(run_id)
    assert info["stderr_bytes"] == 8 * 1024 * 1024
    assert info["stderr_dropped_bytes"] >= 7 * 1024 * 1024, info
    assert os.stat(info["stderr_log"]).st_blocks * 512 <= 1024 * 1024
    assert info["output_dropped_bytes"] == 0


def test_a_client_that_does_not_ask_gets_both_in_one_log(lpd, work_dir):
    # run.start without separate_stderr (pytest-relay-run's job text, older
    # clients): one log, in the order written, every push on "stdout".
    client = lpd.client()
    try:
        reply = client.request("run.start", argv=["sh", "-c", "echo o1; echo e1 >&2; echo o2"], cwd=work_dir,
                               env={"PATH": os.environ["PATH"]})
        assert reply["ok"], reply
        run_id = reply["result"]["run_id"]
        assert "stderr_log" not in reply["result"]
        assert client.request("run.attach", run_id=run_id)["ok"]
        text, streams = "", set()
        while True:
            msg = client.read_message(timeout=120)
            assert msg is not None, "lpd closed the stream"
            if msg.get("event") == "run.output":
                text += msg["data"]["data"]
                streams.add(msg["data"]["stream"])
            elif msg.get("event") == "run.done":
                break
    finally:
        client.close()
    assert text == "o1\ne1\no2\n", text
    assert streams == {"stdout"}
    assert not os.path.exists(os.path.join(lpd.state_dir, "runs", run_id, "stderr.log"))


def test_with_2_to_1_the_streams_stay_in_the_order_written(lpd, work_dir):
    """Attack on issue 18 (4): `lpctl run -- make check 2>&1 | tee log` got all
    of stdout, then all of stderr. When lpctl's stdout and stderr are one
    file, the run keeps one log, in order."""
    script = 'for i in 1 2 3 4 5 6; do echo "out $i"; echo "err $i" >&2; done'
    r = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", "sh", "-c", script], cwd=work_dir,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=240, env=run_env(lpd))
    assert r.returncode == 0, r.stdout
    lines = [line for line in r.stdout.splitlines() if not line.startswith("lpctl: ")]
    assert lines == [f"{s} {i}" for i in range(1, 7) for s in ("out", "err")], r.stdout
    assert ", stderr " not in r.stdout  # one log: no stderr.log


def test_stdout_alone_gets_its_bytes_as_written(lpd, work_dir):
    """Attack on issue 18 (9): an unterminated last line got a newline added
    even when lpctl's stdout was a pipe of its own."""
    r = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", "printf", "abc"], cwd=work_dir,
                       capture_output=True, timeout=240, env=run_env(lpd))
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"abc", r.stdout
