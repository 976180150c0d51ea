"""Issue 14: pytest-xprocess's semantics through lpd's `xprocess` fixture
(pytest-xprocess's own plugin disabled with -p no:xprocess), one behaviour
a test: start timeout, startup_check without a pattern and within the
remaining timeout, compiled regex flags, non-ASCII patterns, popen_kwargs,
kill_proc_tree=False, terminate() with pid None and timeout=-1, the values
ensure() and getinfo() give, max_read_lines, an early exit.

The behaviours are checked by a pytest session of their own (one project,
one inner test each) against a real lpd; this file runs it and asserts
every inner test passed, naming the ones that did not."""

import os
import subprocess
import textwrap

from lpd_harness import source_shim_env, strict_project

PYTHON = "/usr/bin/python3"
HELPER = os.path.join(os.path.dirname(__file__), "helpers", "helper_server.py")

INNER_TESTS = r'''
import os
import re
import select
import signal
import subprocess
import sys
import time

import py
import pytest
import xprocess as upstream  # pytest-xprocess's own package: its starter class is accepted too

from lpd_pytest.xprocess import ProcessStarter

HELPER = {helper!r}


def helper(*args):
    return [sys.executable, HELPER, *args]


def gone(pid, timeout):
    """True once `pid` has ended (a pidfd wait, no polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


class Ready(ProcessStarter):
    pattern = "ready to accept"
    args = helper()
    timeout = 60


def test_start_timeout_raises_timeouterror_and_leaves_it_running(xprocess):
    class Starter(ProcessStarter):
        pattern = "never printed"
        args = helper("--never")
        timeout = 1

    with pytest.raises(TimeoutError):
        xprocess.ensure("slow", Starter)
    info = xprocess.getinfo("slow")
    assert info.pid and info.isrunning()
    assert info.terminate() == 1
    assert not info.isrunning()


def test_early_exit_is_reported_at_once(xprocess):
    class Starter(ProcessStarter):
        pattern = "ready to accept"
        args = helper("--exit", "3")
        timeout = 300

    began = time.monotonic()
    with pytest.raises(RuntimeError, match="exit code 3"):
        xprocess.ensure("quitter", Starter)
    assert time.monotonic() - began < 150, "it waited for the timeout"


def test_startup_check_without_pattern(xprocess):
    calls = []

    class Starter(ProcessStarter):
        # A slow start on purpose: the flag file comes 0.3 s after the spawn.
        args = ["sh", "-c", "sleep 0.3; touch ready-flag; exec sleep 1000"]
        timeout = 60

        def startup_check(self):
            calls.append(time.monotonic())
            return self.control_dir.join("ready-flag").check()

    pid, log = xprocess.ensure("no-pattern", Starter)
    info = xprocess.getinfo("no-pattern")
    assert calls and info.controldir.join("ready-flag").check(), "ensure answered before startup_check passed"
    assert info.pid == pid and info.isrunning()
    assert info.terminate() == 1


def test_starter_without_pattern_or_check_is_refused(xprocess):
    class Starter(ProcessStarter):
        args = helper()

    with pytest.raises(RuntimeError, match="neither a pattern nor a startup_check"):
        xprocess.ensure("nothing-to-wait-for", Starter)
    assert xprocess.getinfo("nothing-to-wait-for").pid is None


def test_startup_check_gets_what_is_left_of_the_timeout(xprocess):
    calls = []

    class Starter(ProcessStarter):
        pattern = "ready to accept"
        args = helper("--delay", "2")  # the pattern comes after 2 s, on purpose
        timeout = 5

        def startup_check(self):
            calls.append(time.monotonic())
            return False

    began = time.monotonic()
    with pytest.raises(TimeoutError, match="startup_check"):
        xprocess.ensure("late-check", Starter)
    elapsed = time.monotonic() - began
    assert calls and calls[0] - began >= 2
    # Within the starter's 5 s in all; a fresh 5 s after the pattern would be 7.
    assert 5 <= elapsed < 6.5, elapsed
    info = xprocess.getinfo("late-check")
    assert info.isrunning(), "a start that timed out is left running"
    assert info.terminate() == 1


def test_compiled_regex_keeps_its_flags(xprocess):
    class Starter(ProcessStarter):
        pattern = re.compile(r"^READY TO ACCEPT CONNECTIONS T=", re.IGNORECASE | re.MULTILINE)
        args = helper()
        timeout = 20

    pid, log = xprocess.ensure("flags", Starter)
    assert "ready to accept connections t=" in log.read()
    assert xprocess.getinfo("flags").terminate() == 1


@pytest.mark.parametrize("index,regex", [(0, r"serveur est pr.t t="), (1, r"est pr\wt t="), (2, "prêt")])
def test_non_ascii_pattern(xprocess, index, regex):
    class Starter(upstream.ProcessStarter):
        pattern = regex
        args = helper("--ready", "le serveur est prêt")
        timeout = 20

    pid, log = xprocess.ensure(f"accents-{{index}}", Starter)
    assert "le serveur est prêt" in log.read_text("utf-8")
    assert xprocess.getinfo(f"accents-{{index}}").terminate() == 1


def test_popen_kwargs_under_lpd(xprocess, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()

    class Starter(ProcessStarter):
        pattern = "^ready$"
        args = 'echo "cwd=$(pwd) umask=$(umask) X=$X"; echo ready; exec sleep 1000'
        env = {{"X": "from-env", "PATH": os.environ["PATH"]}}
        popen_kwargs = {{"cwd": str(workdir), "shell": True, "umask": 0o027, "universal_newlines": True}}
        timeout = 30

    pid, log = xprocess.ensure("kwargs", Starter)
    assert f"cwd={{workdir}} umask=0027 X=from-env" in log.read()
    assert xprocess.getinfo("kwargs").terminate() == 1


def test_popen_kwargs_lpd_cannot_honour_are_refused(xprocess):
    class Starter(ProcessStarter):
        pattern = "ready to accept"
        args = helper()
        popen_kwargs = {{"stdout": subprocess.DEVNULL}}

    with pytest.raises(ValueError, match="stdout"):
        xprocess.ensure("refused", Starter)
    assert xprocess.getinfo("refused").pid is None


def test_terminate_without_the_tree_leaves_its_children(xprocess):
    class Starter(ProcessStarter):
        pattern = "ready to accept"
        args = helper("--children", "1")
        timeout = 60

    pid, log = xprocess.ensure("parent-only", Starter)
    child = int(re.search(r"child (\d+)", log.read()).group(1))
    child_fd = os.pidfd_open(child)
    try:
        info = xprocess.getinfo("parent-only")
        assert info.terminate(kill_proc_tree=False) == 1
        assert not info.isrunning()
        assert gone(pid, 0)
        assert not select.select([child_fd], [], [], 0)[0], "its child was killed too"
    finally:
        signal.pidfd_send_signal(child_fd, signal.SIGKILL)
        os.close(child_fd)


def test_terminate_with_pid_none_does_nothing(xprocess):
    xprocess.ensure("pid-none", Ready)
    info = xprocess.getinfo("pid-none")
    pid, info.pid = info.pid, None
    assert info.terminate() == 0
    assert xprocess.getinfo("pid-none").isrunning()
    info.pid = pid
    assert info.terminate() == 1


def test_terminate_with_negative_timeout_signals_and_does_not_wait(xprocess):
    class Starter(ProcessStarter):
        pattern = "ready to accept"
        args = helper("--ignore-term")
        timeout = 60

    pid, log = xprocess.ensure("no-wait", Starter)
    assert xprocess.getinfo("no-wait").terminate(timeout=-1) == -1
    assert gone(pid, 60), "SIGKILL was not sent after the ignored SIGTERM"


def test_ensure_and_getinfo_return_values(xprocess):
    first = xprocess.ensure("values", Ready)
    pid, log = first
    assert isinstance(pid, int) and isinstance(log, py.path.local) and log.check(file=1)
    assert xprocess.ensure("values", Ready) == first, "a running process is reused"
    info = xprocess.getinfo("values")
    assert (info.name, info.pid, info.logpath) == ("values", pid, log) and info.isrunning()
    assert xprocess.resources[-1].info[0].name == "values"
    pid2, log2 = xprocess.ensure("values", Ready, restart=True)
    assert pid2 != pid and gone(pid, 60)
    assert not info.isrunning() and info.terminate() == 0, "info of the old start"
    assert xprocess.getinfo("values").terminate() == 1
    assert xprocess.getinfo("values").terminate() == 0
    unknown = xprocess.getinfo("never-started")
    assert unknown.pid is None and unknown.logpath is None
    assert not unknown.isrunning() and unknown.terminate() == 0


def test_max_read_lines_raises_runtimeerror_and_leaves_it_running(xprocess):
    class Starter(ProcessStarter):
        pattern = "ready to accept"
        args = helper("--noise", "30")
        max_read_lines = 10
        timeout = 60

    with pytest.raises(RuntimeError):
        xprocess.ensure("chatty", Starter)
    info = xprocess.getinfo("chatty")
    assert info.isrunning()
    assert info.terminate() == 1
'''


def test_xprocess_semantics(lpd, tmp_path):
    project = strict_project(tmp_path / "project", {"test_semantics.py": INNER_TESTS.format(helper=HELPER)})
    env = source_shim_env(lpd, PYTEST_PLUGINS="lpd_pytest")
    r = subprocess.run([PYTHON, "-m", "pytest", "-p", "no:xprocess", "-p", "no:cacheprovider", "-rA", "-q",
                        "test_semantics.py"],
                       cwd=project, env=env, capture_output=True, text=True, timeout=600)
    failed = [line for line in r.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    assert r.returncode == 0 and not failed, "\n".join(failed) + "\n\n" + r.stdout[-20000:] + r.stderr[-5000:]
    assert "16 passed" in r.stdout, r.stdout[-5000:]
    # Nothing of the project's left behind running.
    running = [p for p in lpd.lpctl_json("ps")["processes"] if p["state"] in ("starting", "ready", "stopping")]
    assert not running, running
