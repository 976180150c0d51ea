"""h14fixB (issue 14, attack findings 3 and 4): a helper that daemonizes
(its own process exits once its server runs detached, as `pg_ctl start`)
is running as long as its tree runs, wherever lpd decides what runs:

- `lpctl kill-all` and pytest's --xkill stop its server and say so;
  --xshow shows it LIVE; `lpctl ps` lists it without -a;
- the per-user record limit (--helpers-per-user-max) never forgets it
  ("ended long ago") while its server runs: it counts as running;
- it outlives an lpd restart as a record the next lpd can still kill.

Only a cgroup finds a server whose parent is gone: these tests need lpd's
cgroups (root, or a delegated cgroup2 subtree) and are skipped without.
Every wait is an event (a pattern reply, lpd's process.exited, a pidfd)."""

import json
import os
import pwd
import shutil
import subprocess
import sys

import pytest

from lpd_harness import (SOURCE_DIR, EventWaiter, Lpd, gone, run_as_user, staged_install, user_admin,
                         wait_all_gone)

PYTHON = sys.executable


def cgroup_lpd(*extra):
    d = Lpd()
    os.chmod(d.root, 0o755)
    d.start(*extra)
    if "process trees: cgroups under" not in d.log_text():
        d.stop()
        shutil.rmtree(d.root, ignore_errors=True)
        pytest.skip("lpd cannot make cgroups here (not root, no writable cgroup2):\n" + d.log_text())
    return d


@pytest.fixture
def tree_lpd():
    d = cgroup_lpd()
    yield d
    if d.proc is not None:
        d.kill_helpers()
        d.stop()
    shutil.rmtree(d.root, ignore_errors=True)


def end_all(d, server):
    """After a test of `d` (a cgroup_lpd), passed or failed: kills the
    daemonized `server` (a pid, or None) if it still runs, then `d`'s
    helpers and `d`, and removes its directory."""
    if server and not gone(server):
        os.kill(server, 9)
    if d.proc is not None:
        d.kill_helpers()
        d.stop()
    shutil.rmtree(d.root, ignore_errors=True)


def daemonizing_argv(pidfile):
    """A helper whose server (setsid, detached) writes its pid, then the
    helper says ready and exits."""
    return ["bash", "-c", f"(setsid bash -c 'echo $$ > {pidfile}; exec sleep 100000' &); "
                          f"while [ ! -s {pidfile} ]; do sleep 0.01; done; echo ready; exit 0"]


def ensure_daemonized(lpd, name, pidfile, *extra, lpctl=None):
    events = EventWaiter(lpd, types=["process.exited"])
    try:
        (lpctl or lpd.lpctl)("ensure", *extra, name, "--pattern", "ready", "--", *daemonizing_argv(pidfile))
        events.wait("process.exited", timeout=60, name=name)
    finally:
        events.close()
    server = int(open(pidfile).read())
    assert not gone(server)
    return server


def test_kill_all_and_ps_count_a_daemonized_server_as_running(tree_lpd, tmp_path):
    scope = str(tmp_path)
    server = ensure_daemonized(tree_lpd, "dmx", tmp_path / "pid", "--scope", scope)
    try:
        (record,) = [p for p in tree_lpd.lpctl_json("ps")["processes"] if p["name"] == "dmx"]
        assert record["state"] == "exited" and record["tree_running"] is True, record
        assert "exited (tree runs)" in tree_lpd.lpctl("ps").stdout

        out = tree_lpd.lpctl("kill-all", "--scope", scope).stdout
        assert "nothing to kill" not in out, out
        assert f"{scope}::dmx had exited" in out and f"pid {server}: sleep 100000" in out, out
        assert wait_all_gone([server]) == []
        (record,) = [p for p in tree_lpd.lpctl_json("ps", "-a")["processes"] if p["name"] == "dmx"]
        assert record["tree_running"] is False and record["left_running"] == []
        assert not [p for p in tree_lpd.lpctl_json("ps")["processes"] if p["name"] == "dmx"]
        assert tree_lpd.lpctl("kill-all", "--scope", scope).stdout.strip() == "nothing to kill"
    finally:
        if not gone(server):
            os.kill(server, 9)


def test_xshow_shows_a_daemonized_server_live_and_xkill_stops_it(tree_lpd, tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    server = ensure_daemonized(tree_lpd, "dmx", tmp_path / "pid", "--scope", str(project))
    env = tree_lpd.env(PYTHONPATH=os.path.join(SOURCE_DIR, "shim", "python"), PYTEST_PLUGINS="lpd_pytest")
    env.pop("PYTEST_ADDOPTS", None)

    def pytest_in_project(*args):
        r = subprocess.run([PYTHON, "-m", "pytest", "-p", "no:xprocess", "-p", "no:cacheprovider", "-q", *args],
                           cwd=project, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    try:
        shown = pytest_in_project("--xshow")
        assert " dmx LIVE " in shown, shown
        killed = pytest_in_project("--xkill")
        assert " dmx TERMINATED" in killed, killed
        assert wait_all_gone([server]) == []
        assert " dmx DEAD " in pytest_in_project("--xshow")
    finally:
        if not gone(server):
            os.kill(server, 9)


def test_a_daemonized_server_outlives_an_lpd_restart_as_a_killable_record(tmp_path):
    d = cgroup_lpd()
    server = None
    try:
        server = ensure_daemonized(d, "dmx", tmp_path / "pid", "--scope", str(tmp_path))
        d.stop()
        assert not gone(server), "stopping lpd stopped a helper's server"
        d.start()
        (record,) = [p for p in d.lpctl_json("ps")["processes"] if p["name"] == "dmx"]
        assert record["tree_running"] is True and [p["pid"] for p in record["left_running"]] == [server], record
        out = d.lpctl("kill", "--scope", str(tmp_path), "dmx").stdout
        assert f"pid {server}: sleep 100000" in out, out
        assert wait_all_gone([server]) == []
    finally:
        end_all(d, server)


# -- the per-user record limit, as a non-root user of a root lpd -----------------

GROUP = "lpdfixb"
USER = "lpdfixb_a"


@pytest.fixture(scope="module")
def user():
    if os.geteuid() != 0:
        pytest.skip("creates a user and runs a root lpd")
    user_admin(["groupadd", "-f", GROUP], check=True)
    user_admin(["userdel", "-r", USER], capture_output=True)
    user_admin(["useradd", "-m", "-s", "/bin/sh", "-G", GROUP, USER], check=True)
    yield pwd.getpwnam(USER)
    user_admin(["userdel", "-r", USER], capture_output=True)


def test_the_record_limit_never_forgets_a_helper_whose_server_runs(user):
    d = cgroup_lpd("--socket-group", GROUP, "--helpers-per-user-max", "2")
    lpctl = staged_install()["lpctl"]  # one the user may run
    server = None

    def as_user(*args, check=True):
        return run_as_user(user, GROUP, [lpctl, "--socket", d.socket, *args], d.socket, check=check)

    try:
        pidfile = os.path.join(user.pw_dir, "dmx.pid")
        server = ensure_daemonized(d, "dmx", pidfile, lpctl=as_user)
        # An ended helper with nothing left running: the one to forget.
        events = EventWaiter(d, types=["process.exited"])
        try:
            as_user("ensure", "done", "--", "sh", "-c", "exit 0", check=False)  # it may end before it counts as ready
            events.wait("process.exited", timeout=60, name="done")
        finally:
            events.close()
        # A third record: "done" is forgotten, never dmx, whose server runs.
        started = json.loads(as_user("--json", "ensure", "s1", "--", "sleep", "300").stdout)
        names = {p["name"]: p for p in json.loads(as_user("--json", "ps", "-a").stdout)["processes"]}
        assert "done" not in names and "dmx" in names and names["dmx"]["tree_running"] is True, names
        assert "ended long ago; forgotten" in d.log_text()
        # dmx and s1 run: a fourth is refused, not made room for by forgetting dmx.
        refused = as_user("ensure", "s2", "--", "sleep", "300", check=False)
        assert refused.returncode != 0 and "--helpers-per-user-max" in refused.stderr, refused.stderr
        assert "dmx" in {p["name"] for p in json.loads(as_user("--json", "ps").stdout)["processes"]}
        # A second ensure of dmx does not start a second server beside the first.
        again = as_user("ensure", "dmx", "--pattern", "ready", "--", *daemonizing_argv(pidfile), check=False)
        assert again.returncode != 0 and f"pid {server}" in again.stderr, again.stderr
        out = as_user("kill", "dmx").stdout
        assert f"pid {server}: sleep 100000" in out, out
        as_user("kill", "s1")
        assert wait_all_gone([server, started["pid"]]) == []
    finally:
        end_all(d, server)
