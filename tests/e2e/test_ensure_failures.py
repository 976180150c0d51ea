"""Issue 14, h14fixA (attack findings 1, 11, 12): what a failed ensure
says, and what the next ensure does.

- Every failure shows the real last lines of the helper's log (read from
  the file's end, at most 10 lines / 4 KiB), also for a helper without a
  pattern that exited at once and for a timeout whose last line has no
  newline yet: never "its log is empty" for a log that is not.
- A helper whose start timed out and was left running (--keep-on-timeout,
  as lpd's xprocess fixture always asks) is handed back by the next
  ensure at once, outcome "reused", `ready` false and a `not_ready` note,
  as pytest-xprocess returns a running process; `lpctl ps` says it runs
  but never became ready. The xprocess fixture returns it without raising.

Every wait is an event: lpctl's reply (a timeout of 1 s is lpd's own
timer, which is what is tested), the inner pytest session's end."""

import json
import os
import subprocess
import sys

import pytest

from lpd_harness import source_shim_env, strict_project

PY = sys.executable
HELPER = os.path.join(os.path.dirname(__file__), "helpers", "helper_server.py")


def ensure(lpd, name, scope, *argv, pattern=None, timeout=None, keep=False, check=False):
    args = ["--json", "ensure", name, "--scope", scope, "--cwd", scope]
    if pattern is not None:
        args += ["--pattern", pattern]
    if timeout is not None:
        args += ["--timeout", str(timeout)]
    if keep:
        args.append("--keep-on-timeout")
    return lpd.lpctl(*args, "--", *argv, check=check)


# A helper whose last line has no newline yet when its start times out.
UNTERMINATED = "import sys,time\nprint('first line')\nsys.stdout.write('almost ready')\nsys.stdout.flush()\ntime.sleep(600)\n"


@pytest.mark.parametrize("name,argv,pattern,timeout,why,last_lines", [
    # With a pattern, so the exit is surely seen before any answer: without
    # one lpd may answer "ready" first (the helper was running then).
    ("e1", ["sh", "-c", "echo some error text >&2; exit 1"], "ready", None, "exited with exit code 1",
     "some error text"),
    ("nonl", [PY, "-c", UNTERMINATED], "ready$", 1, "printed no line matching", "first line\nalmost ready"),
], ids=["early-exit", "timeout-with-an-unterminated-last-line"])
def test_a_failed_start_shows_why_and_its_last_log_lines(lpd, work_dir, name, argv, pattern, timeout, why,
                                                         last_lines):
    r = ensure(lpd, name, work_dir, *argv, pattern=pattern, timeout=timeout)
    assert r.returncode != 0
    assert why in r.stderr, r.stderr
    assert "last log lines:\n" + last_lines in r.stderr, r.stderr
    assert "its log is empty" not in r.stderr


def test_failure_shows_only_the_last_lines(lpd, work_dir):
    script = "import sys\nfor i in range(500): print(f'line {i}')\nsys.exit(3)\n"
    r = ensure(lpd, "many", work_dir, PY, "-c", script, pattern="never")
    assert r.returncode != 0
    tail = r.stderr.split("last log lines:\n", 1)[1].rstrip("\n").removesuffix(" [unavailable]")
    assert tail.splitlines() == [f"line {i}" for i in range(490, 500)], r.stderr
    assert "line 489" not in r.stderr


def test_empty_log_is_said_empty(lpd, work_dir):
    # With a pattern, so the exit is surely seen before any answer (without
    # one, lpd may answer "ready" before the exit: a race, not a lie).
    r = ensure(lpd, "quiet", work_dir, "sh", "-c", "exit 4", pattern="ready")
    assert r.returncode != 0
    assert "its log is empty" in r.stderr, r.stderr


def test_next_ensure_after_a_kept_timeout_reuses_the_running_process(lpd, work_dir):
    first = ensure(lpd, "slow", work_dir, PY, HELPER, "--never", pattern="never printed", timeout=1, keep=True)
    assert first.returncode != 0 and "it is left running (--keep-on-timeout)" in first.stderr, first.stderr
    # A long timeout: were this a new wait, lpctl would not come back.
    again = ensure(lpd, "slow", work_dir, PY, HELPER, "--never", pattern="never printed", timeout=600, keep=True,
                   check=True)
    reply = json.loads(again.stdout)
    assert reply["outcome"] == "reused" and reply["reused"] is True, reply
    assert reply["ready"] is False
    assert reply["not_ready"] == ('it runs but never became ready: it printed no line matching "never printed" '
                                  "(timed out waiting for its pattern)"), reply
    human = lpd.lpctl("ensure", "slow", "--scope", work_dir, "--cwd", work_dir, "--pattern", "never printed",
                      "--", PY, HELPER, "--never")
    assert "never became ready" in human.stdout + human.stderr, human.stdout + human.stderr
    listed = lpd.lpctl("ps")
    row = next(line for line in listed.stdout.splitlines() if line.startswith("slow "))
    assert "not_ready" in row and "starting" not in row, listed.stdout
    lpd.lpctl("kill", "slow", "--scope", work_dir)


INNER = r'''
import sys

import pytest

from lpd_pytest.xprocess import ProcessStarter

HELPER = {helper!r}


def test_timed_out_then_reused(xprocess):
    class Starter(ProcessStarter):
        pattern = "never printed"
        args = [sys.executable, HELPER, "--never"]
        timeout = 1

    with pytest.raises(TimeoutError):
        xprocess.ensure("slow", Starter)
    pid = xprocess.getinfo("slow").pid

    class Patient(Starter):
        timeout = 600  # a new wait would not end

    got, log = xprocess.ensure("slow", Patient)  # pytest-xprocess: the running process, no raise
    assert got == pid
    assert xprocess.getinfo("slow").terminate() == 1
'''


def test_xprocess_fixture_returns_a_timed_out_running_process(lpd, tmp_path):
    project = strict_project(tmp_path / "project", {"test_inner.py": INNER.format(helper=HELPER)})
    env = source_shim_env(lpd, PYTEST_PLUGINS="lpd_pytest")
    r = subprocess.run([PY, "-m", "pytest", "-p", "no:xprocess", "-p", "no:cacheprovider", "-q", "test_inner.py"],
                       cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout[-5000:] + r.stderr[-3000:]
