"""A full state directory (ENOSPC) on a real small file system: lpd's state
directory is a 4 MiB tmpfs, filled up by the test. `lpctl run` then fails
with `unavailable` naming the directory and the cause, leaves no ghost run,
and works again once there is room (issue 13). Needs root (mount)."""

import os
import shutil
import subprocess

import pytest

from lpd_harness import LPCTL_BIN, Lpd, short_tempdir


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
    assert "No space left on device" in proc.stderr and lpd.state_dir in proc.stderr, proc.stderr
    assert "[unavailable]" in proc.stderr, proc.stderr
    assert lpd.lpctl_json("runs", "-a") == [], "a failed start left a run behind"
    assert lpd.ping()

    os.unlink(filler)  # room again: the same command works
    again = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", "true"], cwd=str(tmp_path),
                           env=lpd.env(), capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert len(lpd.lpctl_json("runs", "-a")) == 1
