"""Issue 15 (h15term): every pause of every worker is announced on the
terminal of the process that owns it (the xdist controller, a plain
pytest, `lpctl run`), with a resume command that works when pasted; and a
line when a pause is resumed, times out or goes stale.

Every wait reads the output as it comes (a pipe, with a deadline) or lpd's
events; nothing sleeps."""

import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from lpd_harness import (EventWaiter, LPCTL_BIN, PYTHON, SOURCE_DIR, Lpd, finish, killed_if_left_running,
                         short_tempdir, start_pytest, write_tests)

WAIT = 120  # seconds: generous, for a loaded 2-core machine; waits end on the event

PAUSED = re.compile(r"^lpd: (?:(?P<worker>gw\d+) )?PAUSED (?P<nodeid>\S+) (?P<why>.*) "
                    r"\(pause (?P<pause_id>[0-9a-f]{16}), times out in (?P<timeout>[0-9.]+) s; (?P<hint>.*)\)$")
RESUME = re.compile(r"^lpd:   resume: (?P<command>.*)$")


class Output:
    """Reads a child's output line by line as it arrives, each wait bounded
    by a deadline (select on the pipe, our own line splitting: a text
    stream's buffer would hide lines from select). Keeps every line."""

    def __init__(self, stream):
        self.fd = stream.fileno()
        self.buf = b""
        self.lines = []
        self.eof = False

    def _read_line(self, deadline):
        while b"\n" not in self.buf:
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line within the timeout; so far:\n" + "\n".join(self.lines))
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    self.eof = True
                    if self.buf:
                        self.buf += b"\n"
                else:
                    self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        text = line.decode("utf-8", "replace")
        self.lines.append(text)
        return text

    def wait_for(self, pattern, timeout=WAIT):
        """The match of the next line that matches `pattern` (a regex)."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            line = self._read_line(deadline)
            if line is None:
                raise AssertionError(f"output ended without {regex.pattern!r}:\n" + "\n".join(self.lines))
            match = regex.search(line)
            if match:
                return match

    def wait_for_pause(self, timeout=WAIT):
        """(the PAUSED line's match, the resume command as printed)."""
        paused = self.wait_for(PAUSED, timeout)
        # The command is the very next line: the two are written at once.
        line = self._read_line(time.monotonic() + timeout)
        command = RESUME.match(line or "")
        assert command, f"no resume line right after {paused.group(0)!r}: {line!r}"
        return paused, command.group("command")

    def rest(self, timeout=WAIT, resume_any=False):
        """Every line until the output ends. `resume_any`: pastes the resume
        command of any pause announced meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._read_line(deadline)
            if line is None:
                return "\n".join(self.lines)
            command = RESUME.match(line)
            if resume_any and command:
                paste(command.group("command"))


def paste(command):
    """Runs a printed command the way a person pasting it would: through a
    shell, with lpctl on PATH and none of the test's lpd environment (the
    command must name the socket itself)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LPD_")}
    env["PATH"] = os.path.dirname(os.path.abspath(LPCTL_BIN)) + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env, timeout=WAIT)
    assert result.returncode == 0, f"{command!r} exited {result.returncode}: {result.stdout}{result.stderr}"
    return result


def nodeid_of(paused):
    """The test a PAUSED line names, without the "@group" xdist's loadgroup
    adds to the nodeids its workers report."""
    return paused.group("nodeid").split("@")[0]


def pause_created_event(lpd, run_id, pause_id):
    """The pause.created event of `pause_id`, from lpd's kept events."""
    client = lpd.client()
    try:
        reply = client.request("events.list", run_id=run_id, types=["pause.created"])
    finally:
        client.close()
    assert reply["ok"], reply
    found = [e["data"] for e in reply["result"]["events"] if e["data"].get("pause_id") == pause_id]
    assert len(found) == 1, reply
    return found[0]


@pytest.fixture
def test_dir():
    d = short_tempdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def new_run_id():
    return "e2e-" + uuid.uuid4().hex[:10]


# Two groups, so that each worker holds one: gw_x fails, then reaches a
# checkpoint; gw_y fails. xdist's loadgroup keeps a group on one worker.
XDIST_TESTS = """
import pytest
from lpd_pytest import checkpoint

@pytest.mark.xdist_group("x")
def test_x_fails():
    assert 6 * 7 == 41, "x broke"

@pytest.mark.xdist_group("x")
def test_x_checkpoint():
    decision = checkpoint(task="approve x", timeout=300)
    print("X-DECISION", decision.result, repr(decision.reason))
    assert decision.result is True

@pytest.mark.xdist_group("y")
def test_y_fails():
    assert "y" == "z", "y broke"
"""


def test_xdist_controller_announces_each_workers_pause_with_a_command_that_works(lpd, test_dir):
    write_tests(test_dir, "test_xdist_pauses.py", XDIST_TESTS)
    proc = start_pytest(lpd, test_dir, "-n", "2", "--dist", "loadgroup", "--pause-on-failure", run_id=new_run_id())
    out = Output(proc.stdout)
    with killed_if_left_running(proc):
        # Both workers fail at once and pause: both announced, each with its worker.
        first = out.wait_for_pause()
        second = out.wait_for_pause()
        by_test = {nodeid_of(p): (p, command) for p, command in (first, second)}
        assert set(by_test) == {"test_xdist_pauses.py::test_x_fails", "test_xdist_pauses.py::test_y_fails"}, out.lines
        assert {p.group("worker") for p, _ in by_test.values()} == {"gw0", "gw1"}
        x, x_command = by_test["test_xdist_pauses.py::test_x_fails"]
        y, y_command = by_test["test_xdist_pauses.py::test_y_fails"]
        assert x.group("why").startswith("after failing: AssertionError: x broke"), x.group(0)
        assert y.group("why").startswith("after failing: AssertionError: y broke"), y.group(0)
        assert x.group("timeout") == "300" and "--failure-reason TEXT" in x.group("hint")
        # lpd's socket is not lpctl's default here: the command names it.
        assert x_command == f"lpctl --socket {lpd.socket} resume {x.group('pause_id')}"

        # x resumed with the command exactly as printed: no failure reason.
        paste(x_command)
        resumed = out.wait_for(rf"^lpd: {x.group('worker')} resumed test_xdist_pauses.py::test_x_fails(?:@x)? "
                               rf"\(pause {x.group('pause_id')}; no failure reason given\)$")
        assert resumed
        # Then x's worker reaches its checkpoint: announced, and resumed as printed.
        cp, cp_command = out.wait_for_pause()
        assert nodeid_of(cp) == "test_xdist_pauses.py::test_x_checkpoint"
        assert cp.group("worker") == x.group("worker")
        assert cp.group("why") == "at a checkpoint: approve x"
        assert cp.group("hint") == "decide with --result true|false|none [--reason TEXT]"
        assert cp_command.endswith(f"resume {cp.group('pause_id')} --result true")
        paste(cp_command)
        out.wait_for(rf"^lpd: {cp.group('worker')} resumed test_xdist_pauses.py::test_x_checkpoint(?:@x)? "
                     rf"\(pause {cp.group('pause_id')}; result true\)$")
        # y resumed with what the line says to add, typed after the command.
        paste(y_command + " --failure-reason 'y: known flake, see #42'")
        out.wait_for(rf"^lpd: {y.group('worker')} resumed test_xdist_pauses.py::test_y_fails(?:@y)? "
                     rf"\(pause {y.group('pause_id')}; failure reason: y: known flake, see #42\)$")
        output = out.rest()
    code, _ = finish(proc)
    assert code == 1, output
    assert re.search(r"\b2 failed, 1 passed\b", output), output
    assert "y: known flake, see #42" in output  # the reason reached y's report
    # Each line once: the controller prints each event once.
    assert sum(1 for line in output.splitlines() if " PAUSED " in line) == 3, output


def test_timeout_and_stale_pauses_are_announced(lpd, test_dir):
    write_tests(test_dir, "test_ends.py", """
import pytest
from lpd_pytest import checkpoint

@pytest.mark.xdist_group("short")
def test_short_checkpoint():
    decision = checkpoint(task="nobody answers", timeout=0.5)
    assert decision.result is None

@pytest.mark.xdist_group("short")
def test_waits_for_the_kill():
    checkpoint(task="hold the session", timeout=300)

@pytest.mark.xdist_group("killed")
def test_killed_while_paused():
    assert False, "dies paused"
""")
    run_id = new_run_id()
    events = EventWaiter(lpd, types=["pause."], run_id=run_id)
    proc = start_pytest(lpd, test_dir, "-n", "2", "--dist", "loadgroup", "--pause-on-failure", run_id=run_id)
    out = Output(proc.stdout)
    try:
        announced = {}
        while len(announced) < 2:  # the short checkpoint and the failure, in either order
            paused, command = out.wait_for_pause()
            announced[nodeid_of(paused).split("::")[1]] = (paused, command)
        short, _ = announced["test_short_checkpoint"]
        assert short.group("timeout") == "0.5"
        out.wait_for(rf"^lpd: {short.group('worker')} pause {short.group('pause_id')} of "
                     r"test_ends.py::test_short_checkpoint(?:@short)? timed out after 0.5 s; "
                     r"the checkpoint returns result none$")
        hold, hold_command = out.wait_for_pause()
        assert nodeid_of(hold) == "test_ends.py::test_waits_for_the_kill"

        killed, _ = announced["test_killed_while_paused"]
        created = events.wait("pause.created", pause_id=killed.group("pause_id"))
        os.kill(created["pid"], signal.SIGKILL)  # the worker, paused
        out.wait_for(rf"^lpd: {killed.group('worker')} pause {killed.group('pause_id')} of "
                     r"test_ends.py::test_killed_while_paused(?:@killed)? is stale: "
                     rf"its test process \(pid {created['pid']}\) died while paused$")
        paste(hold_command)
        # xdist may run the killed worker's test again on a new worker,
        # where it fails and pauses again: resumed as announced.
        output = out.rest(resume_any=True)
    finally:
        events.close()
        if proc.poll() is None:
            proc.kill()
    code, _ = finish(proc)
    assert code == 1, output
    assert re.search(r"\[gw\d\] node down: Not properly terminated$", output, re.MULTILINE), output
    assert re.search(r"\b2 passed\b", output), output


def test_plain_pytest_announces_a_checkpoint_from_inside_a_captured_test(lpd, test_dir):
    """A single process: the test's stdout is captured while it waits at its
    checkpoint, yet the lines reach the terminal; under -qq too (only the
    "resumed" line is left out), and the failure pause is said once."""
    write_tests(test_dir, "test_single.py", """
from lpd_pytest import checkpoint

def test_checkpoint():
    print("captured, not shown")
    decision = checkpoint(task="look at the screen", timeout=300)
    assert decision.result is False and decision.reason == "it's wrong"

def test_fails():
    assert False, "single broke"
""")
    proc = start_pytest(lpd, test_dir, "-q", "--pause-on-failure", run_id=new_run_id())
    out = Output(proc.stdout)
    with killed_if_left_running(proc):
        cp, cp_command = out.wait_for_pause()
        assert cp.group("worker") is None and cp.group("nodeid") == "test_single.py::test_checkpoint"
        # Any decision may replace the printed one: the command ends in it.
        assert cp_command.endswith(" --result true")
        paste(cp_command[:-len("true")] + "false --reason \"it's wrong\"")
        failed, failed_command = out.wait_for_pause()
        assert failed.group("nodeid") == "test_single.py::test_fails"
        paste(failed_command)
        output = out.rest()
    code, _ = finish(proc)
    assert code == 1, output
    assert " resumed " not in output  # -qq
    assert "Resume with:" not in output  # the shim's own line gave way to lpd's announcement
    assert sum(1 for line in output.splitlines() if " PAUSED " in line) == 2, output
    # The test's own print stayed captured (a passed test's output is not
    # shown), while the lines written during that very capture reached the terminal.
    assert "captured, not shown" not in output


def test_lpctl_run_streams_the_same_lines_once(lpd, test_dir):
    write_tests(test_dir, "test_xdist_pauses.py", XDIST_TESTS)
    env = lpd.env()
    env.pop("LPD_RUN_ID", None)
    proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "run", "--pause-on-failure", "--",
                             PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", "--dist", "loadgroup"],
                            cwd=test_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    out = Output(proc.stdout)
    with killed_if_left_running(proc):
        run_id = out.wait_for(r"^lpctl: run (\S+) \(log ").group(1)
        pauses = [out.wait_for_pause(), out.wait_for_pause()]
        assert {p.group("worker") for p, _ in pauses} == {"gw0", "gw1"}
        for paused, command in pauses:
            # The very text lpd announced: what the pytest controller prints too.
            created = pause_created_event(lpd, run_id, paused.group("pause_id"))
            assert created["announcement"] == paused.group(0) + "\nlpd:   resume: " + command
            paste(command)
        cp, cp_command = out.wait_for_pause()
        assert nodeid_of(cp) == "test_xdist_pauses.py::test_x_checkpoint"
        paste(cp_command)
        output = out.rest()
    code, _ = finish(proc)
    assert code == 1, output
    # Once each: pytest under `lpctl run` leaves the announcing to lpctl.
    assert sum(1 for line in output.splitlines() if " PAUSED " in line) == 3, output
    assert sum(1 for line in output.splitlines() if re.match(r"^lpd: gw\d resumed ", line)) == 3, output
    assert "Resume with:" not in output


def test_announcements_go_on_across_an_lpd_restart(lpd, test_dir):
    """lpd killed (-9) and started again while a test is paused: the
    announcer subscribes again from the last event it saw, so the resume
    done after the restart is announced, and so is the next pause; none
    twice."""
    write_tests(test_dir, "test_restart.py", """
from lpd_pytest import checkpoint

def test_checkpoint():
    assert checkpoint(task="across a restart", timeout=300).result is True

def test_fails():
    assert False, "after the restart"
""")
    proc = start_pytest(lpd, test_dir, "--pause-on-failure", run_id=new_run_id())
    out = Output(proc.stdout)
    with killed_if_left_running(proc):
        cp, cp_command = out.wait_for_pause()
        lpd.kill9()
        lpd.start()
        paste(cp_command)
        out.wait_for(rf"^lpd: resumed test_restart.py::test_checkpoint \(pause {cp.group('pause_id')}; result true\)$")
        failed, failed_command = out.wait_for_pause()
        assert failed.group("nodeid") == "test_restart.py::test_fails"
        paste(failed_command)
        out.wait_for(rf"^lpd: resumed test_restart.py::test_fails \(pause {failed.group('pause_id')}; ")
        output = out.rest()
    code, _ = finish(proc)
    assert code == 1, output
    assert re.search(r"\b1 failed, 1 passed\b", output), output
    assert sum(1 for line in output.splitlines() if " PAUSED " in line) == 2, output
    assert sum(1 for line in output.splitlines() if line.startswith("lpd: resumed ")) == 2, output


def test_a_socket_path_with_spaces_and_quotes_is_quoted_for_the_shell(test_dir):
    root = tempfile.mkdtemp(prefix="lpd e2e 'q' ", dir="/tmp")
    daemon = Lpd(root=root).start()
    try:
        write_tests(test_dir, "test_quoted.py", "def test_fails():\n    assert False, 'quoted'\n")
        proc = start_pytest(daemon, test_dir, "--pause-on-failure", run_id=new_run_id())
        out = Output(proc.stdout)
        with killed_if_left_running(proc):
            paused, command = out.wait_for_pause()
            assert command == (f"lpctl --socket '{root}/lpd.sock'".replace("'q'", "'\\''q'\\''") +
                               f" resume {paused.group('pause_id')}"), command
            paste(command + " --failure-reason 'pasted through sh'")
            output = out.rest()
        code, _ = finish(proc)
        assert code == 1, output
        assert "pasted through sh" in output
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_lines_after_a_one_character_progress_mark_start_a_fresh_line():
    """pytest's progress "F" after our last lines was taken for nothing new
    (CPython shares one-character strings, and the rule told "pytest wrote
    since" by the current line's identity): the next announcement was glued
    to it, "Flpd: ... is stale". Driven on a pipe with pytest's terminal
    writer as pytest leaves it."""
    import sys
    sys.path.insert(0, os.path.join(SOURCE_DIR, "shim", "python"))
    from _pytest._io import TerminalWriter
    from lpd_pytest.pause_announcer import PauseAnnouncer

    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as stream:
        tw = TerminalWriter(stream)
        tw.hasmarkup = False
        reporter = type("Reporter", (), {"_tw": tw, "verbosity": 0})()
        announcer = PauseAnnouncer("/nonexistent.sock", "run", reporter)
        try:
            tw.write("F", flush=True)
            announcer._write_lines(["lpd: first"])   # after "F": a fresh line
            tw.write("\n", flush=True)
            tw.write("F", flush=True)                 # the same shared "F" object as before
            announcer._write_lines(["lpd: second"])
            # Nothing from pytest since, but a one-character line cannot
            # tell: a blank line rather than a glued one.
            announcer._write_lines(["lpd: third"])
        finally:
            os.close(announcer._fd)
    with os.fdopen(read_end) as f:
        assert f.read() == "F\nlpd: first\n\nF\nlpd: second\n\nlpd: third\n"
