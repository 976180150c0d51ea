"""lpd's state is private whatever umask started it (attacker finding on
issue 14: `lpd start` from a shell with umask 022 left lpd.log 0644 and the
state directory 0755, and another user read a leaked argv from lpd.log).
Also an lpd.log and state directory an older lpd left open are narrowed."""

import json
import os
import select
import stat
import subprocess

from lpd_harness import LPCTL_BIN, LPD_BIN


def start_lpd(root, umask):
    sock, state = os.path.join(root, "sock"), os.path.join(root, "state")
    subprocess.run([LPD_BIN, "start", "--socket", sock, "--state-dir", state], check=True,
                   stdout=subprocess.DEVNULL, preexec_fn=lambda: os.umask(umask), timeout=60)
    return sock, state


def stop_lpd(sock):
    status = subprocess.run([LPCTL_BIN, "--socket", sock, "--json", "status"], capture_output=True, text=True,
                            check=True, timeout=30).stdout
    pid = json.loads(status)["pid"]
    fd = os.pidfd_open(pid)
    try:
        os.kill(pid, 15)
        assert select.select([fd], [], [], 60)[0], "lpd did not stop"
    finally:
        os.close(fd)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_fresh_state_is_private_under_a_lax_umask(work_dir):
    sock, state = start_lpd(work_dir, 0o022)
    try:
        assert mode(state) == (0o711 if os.geteuid() == 0 else 0o700)
        assert mode(os.path.join(state, "lpd.log")) == 0o600
        for name in os.listdir(state):
            path = os.path.join(state, name)
            if os.path.isfile(path) and not os.path.islink(path):
                assert mode(path) & 0o077 == 0, (name, oct(mode(path)))
    finally:
        stop_lpd(sock)


def test_an_open_state_an_older_lpd_left_is_narrowed(work_dir):
    state = os.path.join(work_dir, "state")
    os.mkdir(state, 0o755)
    os.chmod(state, 0o755)
    log = os.path.join(state, "lpd.log")
    with open(log, "w") as f:
        f.write("an older lpd's line\n")
    os.chmod(log, 0o644)
    sock, _ = start_lpd(work_dir, 0o022)
    try:
        assert mode(state) == (0o711 if os.geteuid() == 0 else 0o700)
        assert mode(log) == 0o600
        with open(log) as f:
            assert f.read().startswith("an older lpd's line\n")  # narrowed, not replaced
    finally:
        stop_lpd(sock)
