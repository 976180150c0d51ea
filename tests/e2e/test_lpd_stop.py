"""Issue 18 (h18try): `lpd stop` stops the running daemon gracefully and
returns only once it is gone; it says so when none runs, and only the
daemon's user or root may stop it."""

import grp
import os
import shutil
import subprocess
import tempfile

import pytest

from lpd_harness import LPD_BIN, Lpd, gone, short_tempdir, socket_activated_lpd, staged_install, throwaway_users


def lpd_stop(*args, env=None, **kwargs):
    return subprocess.run([LPD_BIN, "stop", *args], capture_output=True, text=True, timeout=120,
                          env=env if env is not None else dict(os.environ), **kwargs)


@pytest.fixture
def daemon():
    d = Lpd().start()
    yield d
    d.stop()  # no-op once `lpd stop` ended it and the test reaped it
    shutil.rmtree(d.root, ignore_errors=True)


def reap_stopped(d):
    """The daemon is our child: once `lpd stop` returned it must have exited
    already, so poll() (no wait) reaps it. Returns its exit code."""
    code = d.proc.poll()
    d.proc = None
    return code


def test_stop_returns_once_the_daemon_is_gone(daemon):
    result = lpd_stop("--socket", daemon.socket)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"lpd (pid {daemon.pid}) on {daemon.socket} stopped" in result.stdout
    assert "keep running" in result.stdout  # says what it leaves running
    assert reap_stopped(daemon) == 0, daemon.log_text()  # gone when stop returned, and cleanly
    assert not os.path.exists(daemon.socket)
    log = daemon.log_text()
    assert "received signal 15, shutting down" in log and "lpd stopped" in log
    # The socket and state are free again at once.
    daemon.start()
    assert daemon.ping()


def test_stop_finds_the_socket_as_lpd_start_does(daemon):
    """No --socket: $LPD_SOCKET, like `lpd start` and lpctl."""
    result = lpd_stop(env=daemon.env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert reap_stopped(daemon) == 0


def test_stop_with_no_daemon_says_so():
    root = short_tempdir()
    try:
        socket_path = os.path.join(root, "lpd.sock")
        result = lpd_stop("--socket", socket_path)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "not running" in result.stderr and socket_path in result.stderr
        assert result.stdout == ""
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_helpers_keep_running_after_stop_and_the_next_lpd_takes_them_back(daemon):
    started = daemon.lpctl_json("ensure", "keeper", "--pattern", "ready", "--", "sh", "-c",
                                "echo ready; exec sleep 600")
    pid = started["pid"]
    result = lpd_stop("--socket", daemon.socket)
    assert result.returncode == 0, result.stdout + result.stderr
    assert reap_stopped(daemon) == 0
    assert not gone(pid)
    daemon.start()
    procs = {p["name"]: p for p in daemon.lpctl_json("ps")["processes"]}
    assert procs["keeper"]["pid"] == pid and procs["keeper"]["state"] == "ready"
    daemon.lpctl("kill", "keeper")


def test_stop_usage():
    helped = subprocess.run([LPD_BIN, "stop", "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0
    assert "0 stopped" in helped.stdout and "2 no lpd was running" in helped.stdout
    bad = subprocess.run([LPD_BIN, "stop", "--no-such-option"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 64, bad.stdout + bad.stderr


GROUP = "lpdstop"
USERS = {"other": "lpdstop_o"}


@pytest.mark.skipif(os.geteuid() != 0, reason="creates a user and runs a root lpd")
def test_another_user_may_not_stop_it():
    """A member of the socket's group may talk to root's lpd, not stop it."""
    with throwaway_users(USERS, GROUP) as users:
        other = users["other"]
        d = Lpd(lpd_bin=staged_install()["lpd"])
        os.chmod(d.root, 0o755)  # the user must reach the socket inside
        d.start("--socket-group", GROUP)
        try:
            result = subprocess.run([staged_install()["lpd"], "stop", "--socket", d.socket], capture_output=True,
                                    text=True, timeout=120, user=other.pw_uid, group=other.pw_gid,
                                    extra_groups=[grp.getgrnam(GROUP).gr_gid], cwd=tempfile.gettempdir(),
                                    env={"PATH": "/usr/bin:/bin", "HOME": other.pw_dir})
            assert result.returncode == 1, result.stdout + result.stderr
            assert "permission denied" in result.stderr and f"pid {d.pid}" in result.stderr
            assert "only that user or root" in result.stderr
            assert d.proc.poll() is None and d.ping()  # untouched
        finally:
            d.stop()
            shutil.rmtree(d.root, ignore_errors=True)


def test_a_daemon_that_does_not_answer_is_not_called_not_running(daemon):
    """Attack on issue 18 (6): `lpd stop` said "not running ... nothing to
    stop" (exit 2) of a daemon that was there but did not answer (stopped
    with SIGSTOP), and waited 5 s whatever --timeout said."""
    import signal
    os.kill(daemon.pid, signal.SIGSTOP)
    try:
        result = lpd_stop("--socket", daemon.socket, "--timeout", "1")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "cannot stop it" in result.stderr and "not running" not in result.stderr, result.stderr
    finally:
        os.kill(daemon.pid, signal.SIGCONT)
    assert daemon.ping()  # left alone


def test_a_socket_activated_daemon_is_left_to_systemctl():
    """systemd's lpd.socket would start lpd again on the next connection:
    `lpd stop` names the systemctl command instead of stopping it."""
    root = short_tempdir()
    try:
        with socket_activated_lpd(root) as (proc, sock):
            result = lpd_stop("--socket", sock)
            assert result.returncode == 1, result.stdout + result.stderr
            assert "systemctl stop lpd.socket lpd.service" in result.stderr and f"pid {proc.pid}" in result.stderr
            assert proc.poll() is None  # still serving
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_lpd_start_in_the_background_keeps_none_of_the_callers_descriptors():
    """A CI step runs `lpd start` with its output on a pipe and that pipe
    also open as fd 7: the daemon keeps neither, so whoever reads the pipe
    sees its end once `lpd start` returned (a daemon holding it would hang
    the step until lpd stopped)."""
    root = short_tempdir()
    sock, state = os.path.join(root, "lpd.sock"), os.path.join(root, "state")
    script = f'"{LPD_BIN}" start --socket "{sock}" --state-dir "{state}" 7>&1 >/dev/null 2>&1; echo "start: $?"'
    step = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        the_pipe = f"pipe:[{os.fstat(step.stdout.fileno()).st_ino}]"
        out, _ = step.communicate(timeout=120)  # returns at the pipe's end of file
        assert out == "start: 0\n", out
        pid = int(open(os.path.join(state, "lpd.lock")).read())
        held = [fd for fd in os.listdir(f"/proc/{pid}/fd") if os.readlink(f"/proc/{pid}/fd/{fd}") == the_pipe]
        assert not held, f"lpd holds the step's pipe as fd {held}"
    finally:
        if step.poll() is None:
            step.kill()
        lpd_stop("--socket", sock)
        shutil.rmtree(root, ignore_errors=True)


# h13pipe (issue 13, attack finding): `lpd start --foreground 2>&1 | tee`
# whose reader went away killed lpd with SIGPIPE at its next log line.
def test_a_foreground_lpd_outlives_the_reader_of_its_stderr():
    d = Lpd()
    read_end, write_end = os.pipe()
    ready_read, ready_write = os.pipe()
    proc = subprocess.Popen(
        [LPD_BIN, "start", "--foreground", "--socket", d.socket, "--state-dir", d.state_dir, "--log-level", "debug",
         "--ready-fd", str(ready_write)],
        pass_fds=[ready_write], stdout=write_end, stderr=write_end, stdin=subprocess.DEVNULL, env=d.env())
    os.close(write_end)
    os.close(ready_write)
    os.close(read_end)  # the reader is gone before lpd's first line
    try:
        with os.fdopen(ready_read) as ready:
            assert ready.readline().startswith("READY "), "lpd did not become ready"
        for _ in range(3):  # each logs at debug: writes into the dead pipe
            assert d.lpctl("ping", check=False).returncode == 0
        stop = lpd_stop("--socket", d.socket)
        assert stop.returncode == 0, stop.stderr
        assert proc.wait(timeout=60) == 0  # a clean stop, not SIGPIPE (-13)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(d.root, ignore_errors=True)
