"""Issue 6: CI hosts. Multi-user isolation through a root lpd (throwaway users),
systemd socket activation and notify protocol, unit verification, the package."""

import grp
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile

import pytest

from lpd_harness import LPCTL_BIN, LPD_BIN, PYTHON, EventWaiter, Lpd, short_tempdir, socket_activated_lpd, write_tests, user_admin, \
    throwaway_users, staged_install

BUILD_DIR = os.environ.get("LPD_BUILD_DIR", "")
GROUP = "lpde2e"
USERS = {"a": "lpde2e_a", "b": "lpde2e_b", "c": "lpde2e_c"}  # c is outside the group

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="creates users and runs a root lpd")


@pytest.fixture(scope="module")
def users():
    with throwaway_users(USERS, GROUP, outsiders=("c",)) as entries:
        yield entries


@pytest.fixture
def root_lpd(users):
    # The users run lpctl and (in runs) the pytest shim: binaries and shim
    # staged where they may execute and read them, wherever the clone is
    # (h18try, issue 18).
    d = Lpd(lpd_bin=staged_install()["lpd"])
    os.chmod(d.root, 0o755)  # users must reach the socket inside
    d.start("--socket-group", GROUP)
    yield d
    d.stop()
    shutil.rmtree(d.root, ignore_errors=True)


def as_user(user, lpd, *args, cwd=None, check=False, timeout=60):
    """Runs lpctl as `user` (their uid, gid and groups), like a runner would."""
    groups = [g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem]
    env = {"PATH": "/usr/bin:/bin", "HOME": user.pw_dir, "USER": user.pw_name, "LPD_SOCKET": lpd.socket}
    result = subprocess.run([staged_install()["lpctl"], *args], user=user.pw_uid, group=user.pw_gid, extra_groups=groups,
                            cwd=cwd or user.pw_dir, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@needs_root
def test_user_outside_the_group_cannot_connect(root_lpd, users):
    mode = os.stat(root_lpd.socket)
    assert oct(mode.st_mode & 0o777) == "0o660" and mode.st_gid == grp.getgrnam(GROUP).gr_gid
    result = as_user(users["c"], root_lpd, "status")
    assert result.returncode == 2 and "Permission denied" in result.stderr
    assert as_user(users["b"], root_lpd, "status").returncode == 0


@needs_root
def test_run_requested_by_a_user_runs_as_that_user(root_lpd, users):
    b = users["b"]
    code = "import os; print('IDS', os.getuid(), os.getgid(), sorted(os.getgroups()))"
    result = as_user(b, root_lpd, "run", "--", PYTHON, "-c", code, check=True)
    ids = [l for l in result.stdout.splitlines() if l.startswith("IDS")][0].split(" ", 3)
    assert int(ids[1]) == b.pw_uid and int(ids[2]) == b.pw_gid
    assert grp.getgrnam(GROUP).gr_gid in json.loads(ids[3])
    assert 0 not in json.loads(ids[3])


@needs_root
def test_users_act_only_on_their_own_objects(root_lpd, users):
    a, b = users["a"], users["b"]
    # A's run: B may see it but not stop it; root may.
    started = as_user(a, root_lpd, "--json", "run", "--detach", "--", "sleep", "600", check=True)
    run_id = json.loads(started.stdout)["run_id"]
    assert any(r["run_id"] == run_id for r in json.loads(as_user(b, root_lpd, "--json", "runs").stdout))
    denied = as_user(b, root_lpd, "stop", run_id)
    assert denied.returncode == 1 and "permission_denied" in denied.stderr and str(a.pw_uid) in denied.stderr
    root_lpd.lpctl("stop", run_id, "--grace", "0")

    # A's helper process: B cannot kill it, and B's kill-all leaves it alone.
    as_user(a, root_lpd, "ensure", "srv", "--pattern", "ready", "--", "sh", "-c", "echo ready; exec sleep 600",
            check=True)
    denied = as_user(b, root_lpd, "kill", "srv")
    assert denied.returncode == 1 and "permission_denied" in denied.stderr
    as_user(b, root_lpd, "kill-all", check=True)
    procs = {p["name"]: p for p in root_lpd.lpctl_json("ps")["processes"]}
    assert procs["srv"]["state"] == "ready" and procs["srv"]["owner"] == a.pw_uid
    root_lpd.lpctl("kill", "srv")

    # A's pause: B cannot resume it; root can.
    work = tempfile.mkdtemp(prefix="lpd-e2e-", dir="/tmp")
    os.chmod(work, 0o755)
    write_tests(work, "test_cp.py", "from lpd_pytest import checkpoint\n"
                                    "def test_cp():\n    assert checkpoint(task='t', timeout=120).result is True\n")
    events = EventWaiter(root_lpd, types=["pause.created"])
    proc = subprocess.Popen([staged_install()["lpctl"], "run", "--", PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "test_cp.py"], user=a.pw_uid, group=a.pw_gid, cwd=work,
                            env={"PATH": "/usr/bin:/bin", "HOME": a.pw_dir, "LPD_SOCKET": root_lpd.socket},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            extra_groups=[grp.getgrnam(GROUP).gr_gid])
    pause = events.wait("pause.created")
    assert pause["owner_uid"] == a.pw_uid
    denied = as_user(b, root_lpd, "resume", pause["pause_id"], "--result", "true")
    assert denied.returncode == 1 and "permission_denied" in denied.stderr
    root_lpd.lpctl("resume", pause["pause_id"], "--result", "true")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    shutil.rmtree(work, ignore_errors=True)


@needs_root
def test_admin_group_members_act_like_root(users):
    d = Lpd(lpd_bin=staged_install()["lpd"])
    os.chmod(d.root, 0o755)
    d.start("--socket-group", GROUP, "--admin-group", GROUP)
    try:
        started = as_user(users["a"], d, "--json", "run", "--detach", "--", "sleep", "600", check=True)
        run_id = json.loads(started.stdout)["run_id"]
        as_user(users["b"], d, "stop", run_id, "--grace", "0", check=True)
    finally:
        d.stop()
        shutil.rmtree(d.root, ignore_errors=True)


def test_socket_activation_serves_on_the_passed_socket():
    root = short_tempdir()
    try:
        with socket_activated_lpd(root) as (proc, sock):
            # This connection waits in the backlog while lpd is exec'd in the same pid.
            status = json.loads(subprocess.run([LPCTL_BIN, "--socket", sock, "--json", "status"], capture_output=True,
                                               text=True, timeout=60, check=True).stdout)
            assert status["socket_activated"] is True
            assert status["pid"] == proc.pid and status["socket"] == sock
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_notify_protocol_ready_watchdog_stopping():
    root = short_tempdir()
    notify_path = os.path.join(root, "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(60)
    d = Lpd(root)
    env = d.env(NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="200000")
    proc = subprocess.Popen([LPD_BIN, "start", "--foreground", "--socket", d.socket, "--state-dir", d.state_dir],
                            env=env, stderr=subprocess.DEVNULL)
    try:
        first = notify.recv(4096).decode()
        assert "READY=1" in first and f"MAINPID={proc.pid}" in first
        # READY=1 comes after the socket accepts: this connect must work at once.
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.connect(d.socket)
        probe.close()
        assert notify.recv(4096).decode() == "WATCHDOG=1"
        proc.send_signal(signal.SIGTERM)
        messages = []
        while "STOPPING=1" not in messages:
            messages.append(notify.recv(4096).decode())
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
        notify.close()
        shutil.rmtree(root, ignore_errors=True)
    assert proc.returncode == 0


@pytest.mark.skipif(not BUILD_DIR or shutil.which("systemd-analyze") is None, reason="needs the build and systemd")
def test_units_pass_systemd_analyze_verify():
    if os.geteuid() == 0:
        user_admin(["groupadd", "-f", "lpd"], check=True)  # SocketGroup=lpd must exist, as the package makes it
    verify = os.path.join(BUILD_DIR, "systemd", "verify")
    result = subprocess.run(["systemd-analyze", "verify", os.path.join(verify, "lpd.socket"),
                             os.path.join(verify, "lpd.service")], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@pytest.mark.skipif(not BUILD_DIR or shutil.which("cpack") is None, reason="needs the build and cpack")
def test_debian_package_contents_and_plugin_entry_point():
    out = tempfile.mkdtemp(prefix="lpd-deb-")
    try:
        built = subprocess.run(["cpack", "-G", "DEB", "-B", out], cwd=BUILD_DIR, capture_output=True, text=True,
                               timeout=600)
        assert built.returncode == 0, built.stdout + built.stderr
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        assert len(debs) == 1 and debs[0].startswith("lpd_")
        deb = os.path.join(out, debs[0])
        listing = subprocess.run(["dpkg", "-c", deb], capture_output=True, text=True, check=True).stdout
        for path in ("./usr/bin/lpd", "./usr/bin/lpctl", "./usr/bin/lpd-monitor",
                     "./usr/lib/systemd/system/lpd.service", "./usr/lib/systemd/system/lpd.socket",
                     "./usr/lib/sysusers.d/lpd.conf", "./usr/lib/tmpfiles.d/lpd.conf",
                     "./usr/lib/python3/dist-packages/lpd_pytest/__init__.py",
                     "./usr/lib/python3/dist-packages/lpd_pytest-", "./usr/include/lpd_shim.h"):
            assert path in listing, path
        depends = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True, text=True).stdout
        assert "python3" in depends and "libsystemd0" in depends
        control = subprocess.run(["dpkg-deb", "-I", deb], capture_output=True, text=True).stdout
        assert "postinst" in control
        postinst = subprocess.run(["dpkg-deb", "--ctrl-tarfile", deb], capture_output=True).stdout
        assert b"systemctl enable" not in postinst  # enables nothing by surprise

        # Installed, plain pytest loads the plugin through its entry point.
        prefix = os.path.join(out, "prefix")
        subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", prefix], capture_output=True, check=True)
        site = os.path.join(prefix, "lib", "python3", "dist-packages")
        helped = subprocess.run([PYTHON, "-m", "pytest", "--help"], capture_output=True, text=True,
                                env=dict(os.environ, PYTHONPATH=site, PYTEST_PLUGINS=""), cwd=out)
        assert "--pause-on-failure" in helped.stdout
    finally:
        shutil.rmtree(out, ignore_errors=True)
