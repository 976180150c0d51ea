"""h15lp (issue 15): on a shared host a root lpd keeps each user's
--pause-dir as that user, so no user can make lpd write or read anything of
another's through it: not their directory, not through a link, not their
pauses by a command file."""

import grp
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from lpd_harness import EventWaiter, PYTHON, lpd_for_group, staged_install, throwaway_users
from live_pause_compat import read_run_id, wait_for_event_line, wait_for_file, write_command

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates users and runs a root lpd")

GROUP = "lpdlp"
USERS = {"a": "lpdlp_a", "b": "lpdlp_b"}

CHECKPOINT = """
from pytest_live_pause import checkpoint

def test_cp():
    assert checkpoint(task="approve", timeout=300).result is True
"""


@pytest.fixture(scope="module")
def users():
    with throwaway_users(USERS, GROUP) as entries:
        yield entries


@pytest.fixture
def root_lpd(users):
    with lpd_for_group(GROUP) as d:
        yield d


def workdir_of(user, mode=0o700):
    path = tempfile.mkdtemp(prefix="lpd-lp-", dir="/tmp")
    os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(path, mode)
    return path


def user_file(user, path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, user.pw_uid, user.pw_gid)


def user_pytest(user, lpd, test_dir, *args):
    env = {"PATH": "/usr/bin:/bin", "HOME": user.pw_dir, "USER": user.pw_name, "LPD_SOCKET": lpd.socket,
           "PYTHONPATH": staged_install()["pythonpath"]}  # h18try: readable wherever the clone is
    groups = [g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem]
    return subprocess.Popen([PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-p", "pytest_live_pause", "-q", *args],
                            cwd=test_dir, user=user.pw_uid, group=user.pw_gid, extra_groups=groups, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_another_users_directory_is_never_written(users, root_lpd):
    a, b = users["a"], users["b"]
    a_dir, b_private, b_shared = workdir_of(a), workdir_of(b), workdir_of(b, 0o777)
    try:
        user_file(a, os.path.join(a_dir, "test_ok.py"), "def test_ok():\n    pass\n")
        link = os.path.join(a_dir, "pd")
        os.symlink(b_shared, link)
        os.lchown(link, a.pw_uid, a.pw_gid)
        cases = [(os.path.join(b_private, "pd"), "Permission denied"),  # a may not even look there
                 (b_shared, f"{b_shared}: "),                          # b's, and writable by others
                 (link, f"{link}: is a symbolic link")]
        for pause_dir, why in cases:
            proc = user_pytest(a, root_lpd, a_dir, "--pause-dir", pause_dir)
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 4 and why in out, (pause_dir, out)
        assert os.listdir(b_private) == [] and os.listdir(b_shared) == []
        root_lpd.ping()
    finally:
        for d in (a_dir, b_private, b_shared):
            shutil.rmtree(d, ignore_errors=True)


def test_a_command_file_reaches_only_the_runs_own_pauses(users, root_lpd):
    a, b = users["a"], users["b"]
    a_dir, b_dir = workdir_of(a), workdir_of(b)
    waiter = EventWaiter(root_lpd, types=["pause."])
    procs = []
    try:
        for user, d in ((a, a_dir), (b, b_dir)):
            user_file(user, os.path.join(d, "test_cp.py"), CHECKPOINT)
            procs.append(user_pytest(user, root_lpd, d, "--pause-dir", os.path.join(d, "pd")))
        a_seen, b_seen = [], []
        a_run, b_run = read_run_id(procs[0], a_seen), read_run_id(procs[1], b_seen)
        a_pause = waiter.wait("pause.created", run_id=a_run)["pause_id"]
        b_pause = waiter.wait("pause.created", run_id=b_run)["pause_id"]
        a_run_dir = os.path.join(a_dir, "pd", "runs", a_run)
        record = wait_for_file(os.path.join(a_run_dir, "pauses", a_pause + ".json"))
        assert record["owner_uid"] == a.pw_uid
        for path in ("", "run.json", "events.jsonl", "pauses", "commands", f"pauses/{a_pause}.json"):
            st = os.lstat(os.path.join(a_run_dir, path))
            assert (st.st_uid, st.st_mode & 0o077) == (a.pw_uid, 0), path  # a's own, private

        # a names b's pause in a's own commands/: not a's to resume.
        commands = os.path.join(a_run_dir, "commands")
        write_command(commands, b_pause, {"result": True, "reason": "forged"})
        os.chown(os.path.join(commands, f"{b_pause}.resume.json"), a.pw_uid, a.pw_gid)
        line = wait_for_event_line(a_run_dir, "pause.command_rejected", pause_id=b_pause)
        assert f"no pause \"{b_pause}\" in run {a_run}" in line["message"]
        pending = [p["pause_id"] for p in root_lpd.lpctl_json("ls")]
        assert b_pause in pending

        for user, d, run, pause in ((a, a_dir, a_run, a_pause), (b, b_dir, b_run, b_pause)):
            run_commands = os.path.join(d, "pd", "runs", run, "commands")
            write_command(run_commands, pause, {"result": True, "reason": "own"})
            resumed = waiter.wait("pause.resumed", pause_id=pause)
            assert resumed["reason"] == "own"
        for proc, seen in ((procs[0], a_seen), (procs[1], b_seen)):
            out = "".join(seen) + proc.communicate(timeout=120)[0]
            assert proc.returncode == 0, out
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        waiter.close()
        for d in (a_dir, b_dir):
            shutil.rmtree(d, ignore_errors=True)


def test_a_default_pause_dir_squatted_by_another_user_warns_and_the_run_goes_on(users, root_lpd):
    """b makes a's default /tmp/pytest-live-pause-<a's uid> first (world
    writable): a's run, even with warnings as errors, gets one warning line
    and runs its tests; nothing is written into b's directory."""
    a, b = users["a"], users["b"]
    a_dir = workdir_of(a)
    squat = f"/tmp/pytest-live-pause-{a.pw_uid}"
    shutil.rmtree(squat, ignore_errors=True)
    os.mkdir(squat)
    os.chown(squat, b.pw_uid, b.pw_gid)
    os.chmod(squat, 0o777)
    try:
        user_file(a, os.path.join(a_dir, "test_ok.py"), "def test_ok():\n    pass\n")
        proc = user_pytest(a, root_lpd, a_dir, "-W", "error")
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "1 passed" in out, out
        assert "INTERNALERROR" not in out, out
        assert out.count("lpd_pytest: warning: ") == 1 and squat in out, out
        assert os.listdir(squat) == []
        root_lpd.ping()
    finally:
        shutil.rmtree(squat, ignore_errors=True)
        shutil.rmtree(a_dir, ignore_errors=True)
