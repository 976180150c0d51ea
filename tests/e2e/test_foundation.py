"""Issue 2: the daemon starts, answers, refuses bad input and keeps serving."""

import json
import os
import shutil
import signal
import socket
import subprocess

import pytest

from lpd_harness import LPCTL_BIN, LPD_BIN, PYTHON, Lpd, RawClient, short_tempdir


def test_version_flags():
    out = subprocess.run([LPD_BIN, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("lpd ") and "protocol 1" in out
    out = subprocess.run([LPCTL_BIN, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("lpctl ")


def test_status_json_reports_version_pid_and_paths(lpd):
    status = lpd.lpctl_json("status")
    assert status["pid"] == lpd.pid
    assert status["version"]
    assert status["protocol"] == 1
    assert status["socket"] == lpd.socket
    assert status["state_dir"] == lpd.state_dir
    assert status["connections"]["open"] >= 1
    human = lpd.lpctl("status").stdout
    assert f"pid:         {lpd.pid}" in human and lpd.socket in human


def test_ping_reports_round_trip(lpd):
    out = lpd.lpctl("ping").stdout
    assert out.startswith("pong from ")
    stats = lpd.lpctl_json("ping", "-c", "20")
    assert stats["count"] == 20
    assert 0 < stats["min_us"] <= stats["median_us"] <= stats["max_us"]


def test_status_without_daemon_exits_2_naming_socket():
    root = short_tempdir()
    sock = os.path.join(root, "nothing.sock")
    result = subprocess.run([LPCTL_BIN, "--socket", sock, "status"], capture_output=True, text=True)
    shutil.rmtree(root)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert sock in lines[0] and "lpd start" in lines[0]


def test_background_start_returns_when_ready_and_refuses_a_second(lpd_unstarted):
    d = lpd_unstarted
    first = subprocess.run([LPD_BIN, "start", "--socket", d.socket, "--state-dir", d.state_dir],
                           capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    # No wait: lpd start returned only once the socket accepted connections.
    status = d.lpctl_json("status")
    pid = status["pid"]
    try:
        assert f"pid {pid}" in first.stdout
        assert os.path.exists(os.path.join(d.state_dir, "lpd.log"))
        second = subprocess.run([LPD_BIN, "start", "--socket", d.socket, "--state-dir", d.state_dir],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        assert "already running" in second.stderr and d.socket in second.stderr and str(pid) in second.stderr
        # The first one is unharmed.
        assert d.lpctl_json("status")["pid"] == pid
    finally:
        os.kill(pid, signal.SIGTERM)
    # The daemon is not our child; its pidfd tells us when it is gone.
    pidfd = os.pidfd_open(pid)
    import select
    select.select([pidfd], [], [], 30)
    os.close(pidfd)
    assert not os.path.exists(d.socket)


def test_second_daemon_on_same_state_dir_is_refused(lpd):
    other = Lpd()
    other.state_dir = lpd.state_dir
    result = subprocess.run([LPD_BIN, "start", "--foreground", "--socket", other.socket, "--state-dir",
                             other.state_dir], capture_output=True, text=True, timeout=60)
    shutil.rmtree(other.root, ignore_errors=True)
    assert result.returncode != 0
    assert "state directory" in result.stderr and lpd.state_dir in result.stderr


def test_stale_socket_is_replaced(lpd_unstarted):
    d = lpd_unstarted
    os.makedirs(os.path.dirname(d.socket), exist_ok=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(d.socket)
    stale.close()  # the file stays, nothing listens behind it
    assert os.path.exists(d.socket)
    d.start()
    assert d.ping()


# Listens on argv[1], leaves the listening socket to a child that holds it
# until its stdin ends, and exits; prints its own pid first.
ORPHANED_LISTENER = """
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen()
print(os.getpid(), flush=True)
if os.fork() == 0:
    sys.stdin.read()
    os._exit(0)
"""


@pytest.mark.parametrize("was_lpd", [True, False], ids=["dead-lpd", "daemon"])
def test_a_socket_answering_for_a_dead_listener_is_replaced_only_if_that_was_lpd(lpd_unstarted, was_lpd):
    """A kill -9 of lpd just after it forked (a traceback's console echo, a
    user's path check) left its listening socket open in the child for a
    moment; the next lpd was answered there and refused to start. Such a
    socket is stale when the one that listened is the lpd that held the
    socket's lock (its pid is in the lock file). A daemon whose parent
    listened and exited serves on: never taken over."""
    d = lpd_unstarted
    os.makedirs(os.path.dirname(d.socket), exist_ok=True)
    orphan = subprocess.Popen([PYTHON, "-c", ORPHANED_LISTENER, d.socket], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        listener = int(orphan.stdout.readline())
        assert orphan.wait(timeout=60) == 0
        probe = socket.socket(socket.AF_UNIX)
        probe.connect(d.socket)  # it answers: the child still holds it
        probe.close()
        if was_lpd:
            with open(d.socket + ".lock", "w") as f:  # what that lpd wrote there
                f.write(f"{listener}\n")
            d.start()
            assert d.ping()
        else:
            result = subprocess.run([LPD_BIN, "start", "--foreground", "--socket", d.socket, "--state-dir",
                                     d.state_dir], capture_output=True, text=True, timeout=60)
            assert result.returncode != 0
            assert f"pid {listener} listens on it" in result.stderr and d.socket in result.stderr, result.stderr
            probe = socket.socket(socket.AF_UNIX)
            probe.connect(d.socket)  # still the daemon's
            probe.close()
    finally:
        orphan.stdin.close()


def test_a_live_process_listening_on_the_socket_is_never_replaced(lpd_unstarted):
    d = lpd_unstarted
    os.makedirs(os.path.dirname(d.socket), exist_ok=True)
    other = socket.socket(socket.AF_UNIX)
    other.bind(d.socket)
    other.listen()
    try:
        result = subprocess.run([LPD_BIN, "start", "--foreground", "--socket", d.socket, "--state-dir", d.state_dir],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        assert f"pid {os.getpid()} listens on it" in result.stderr, result.stderr
        probe = socket.socket(socket.AF_UNIX)
        probe.connect(d.socket)  # still ours
        probe.close()
    finally:
        other.close()


def test_non_socket_file_is_not_replaced(lpd_unstarted):
    d = lpd_unstarted
    with open(d.socket, "w") as f:
        f.write("precious")
    result = subprocess.run([LPD_BIN, "start", "--foreground", "--socket", d.socket, "--state-dir", d.state_dir],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "not a socket" in result.stderr
    assert open(d.socket).read() == "precious"


def test_user_daemon_socket_directory_is_private(lpd_unstarted):
    d = lpd_unstarted
    d.socket = os.path.join(d.root, "run", "lpd", "lpd.sock")
    d.start()
    mode = os.stat(os.path.dirname(d.socket)).st_mode & 0o777
    assert mode == (0o755 if os.geteuid() == 0 else 0o700)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_shut_down_cleanly(lpd_unstarted, sig):
    d = lpd_unstarted.start()
    d.stop(sig)  # asserts exit code 0
    assert not os.path.exists(d.socket)
    assert "lpd stopped" in d.log_text()


def test_hello_reports_peer_credentials(lpd):
    c = lpd.client(hello=False)
    result = c.hello()
    assert result["peer"] == {"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid()}
    assert result["server_pid"] == lpd.pid
    assert result["protocol"] == 1
    again = c.request("hello", protocol=1)
    assert not again["ok"] and again["error"]["code"] == "conflict"


def test_ops_lists_the_operation_table(lpd):
    c = lpd.client()
    names = [op["op"] for op in c.request("ops")["result"]["operations"]]
    assert {"hello", "ping", "status", "ops"} <= set(names)


def test_a_refused_state_directory_is_named_on_stderr_in_the_foreground(lpd_unstarted):
    """systemd's unit runs `lpd start --foreground`: the reason lpd will not
    start must reach its stderr (it went only to --ready-fd, and lpd exited
    1 saying nothing)."""
    d = lpd_unstarted
    os.makedirs(d.state_dir, exist_ok=True)
    os.chmod(d.state_dir, 0o1777)
    result = subprocess.run([LPD_BIN, "start", "--foreground", "--socket", d.socket, "--state-dir", d.state_dir],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "refusing to use directory" in result.stderr and d.state_dir in result.stderr, result.stderr
