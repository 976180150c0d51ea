"""h14fixC (issue 14, attacker's findings 9, 10 and 15): the `xprocess`
object sees only its own user's helpers, a terminate() never kills a
shared helper under another holder, and a session without pytest's cache
leaves no /tmp/lpd-xprocess-* directory behind."""

import json
import os
import pwd
import shutil
import sys
import tempfile
import textwrap

import pytest

from lpd_harness import PYTHON, SOURCE_DIR, Lpd, finish, start_pytest, throwaway_users, \
    supervision_cgroup_dir, user_admin, wait_gone, write_tests, staged_install, lpd_for_group, project_for_users, \
    run_as_user

sys.path.insert(0, os.path.join(SOURCE_DIR, "shim", "python"))
from lpd_pytest.xprocess import ProcessStarter, XProcess  # noqa: E402

GROUP = "lpdxiso"
USERS = {"a": "lpdxiso_a", "b": "lpdxiso_b"}
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="creates users and runs a root lpd")


def alive(pid):
    return not wait_gone(pid, timeout=0)


def running_in(lpd, scope):
    """lpd's running helpers of `scope` (proc.list)."""
    c = lpd.client()
    try:
        reply = c.request("proc.list")
    finally:
        c.close()
    assert reply["ok"], reply
    return [p for p in reply["result"]["processes"] if p.get("scope") == scope]


# -- finding 9: another user's helper of that name is not this session's ------------------

@pytest.fixture(scope="module")
def users():
    with throwaway_users(USERS, GROUP) as entries:
        yield entries

@pytest.fixture
def shared_project(users):
    """A root lpd both users may reach, lpctl they may run, one project
    directory both work in."""
    with project_for_users("lpd-xiso-") as project, lpd_for_group(GROUP) as d:
        yield d, staged_install()["lpctl"], project


def as_user(user, d, argv, cwd, **env):
    return run_as_user(user, GROUP, argv, d.socket, cwd=cwd, **env)


# Run as B: getinfo, terminate and ensure of the name A's helper has.
AS_B = textwrap.dedent("""
    import json, os, sys, tempfile
    from lpd_pytest.xprocess import ProcessStarter, XProcess

    class Starter(ProcessStarter):
        pattern = "^ready"
        args = ["sh", "-c", "echo ready $(id -u); exec sleep 600"]
        timeout = 60

    x = XProcess(rootdir=tempfile.mkdtemp(), socket_path=os.environ["LPD_SOCKET"], scope=sys.argv[1])
    info = x.getinfo("db")
    seen = {"pid": info.pid, "logpath": info.logpath and str(info.logpath), "running": info.isrunning(),
            "terminate": info.terminate(), "terminate_alone": info.terminate(kill_proc_tree=False)}
    pid, log = x.ensure("db", Starter)
    seen.update(own_pid=pid, own_log=log.read(), info_pid=x.getinfo("db").pid)
    seen["own_terminate"] = x.getinfo("db").terminate()
    x.close()
    print(json.dumps(seen))
""")


@needs_root
def test_another_users_helper_of_that_name_is_not_running_for_me(users, shared_project):
    d, lpctl, project = shared_project
    a, b = users["a"], users["b"]
    # A puts a "db" in B's project (A may work there: it is world-writable).
    theirs = json.loads(as_user(a, d, [lpctl, "--json", "ensure", "--scope", project, "db", "--pattern", "^ready",
                                       "--", "sh", "-c", "echo ready $(id -u); exec sleep 600"], cwd=project).stdout)
    assert alive(theirs["pid"])

    seen = json.loads(as_user(b, d, [PYTHON, "-c", AS_B, project], cwd=project,
                              PYTHONPATH=staged_install()["pythonpath"]).stdout)  # h18try: readable wherever the clone is
    # As pytest-xprocess answers for a name it does not run: nothing, no error.
    assert seen["pid"] is None and seen["logpath"] is None and seen["running"] is False
    assert seen["terminate"] == 0 and seen["terminate_alone"] == 0
    # ensure() started B's own (another key: another owner), not A's.
    assert seen["own_pid"] != theirs["pid"] and seen["own_log"] == f"ready {b.pw_uid}\n"
    assert seen["info_pid"] == seen["own_pid"] and seen["own_terminate"] == 1
    assert wait_gone(seen["own_pid"])
    # A's helper was never touched.
    assert alive(theirs["pid"])


# -- finding 10: terminate() of a shared helper with other holders only lets go ------------

class Server(ProcessStarter):
    pattern = "^ready"
    args = ["sh", "-c", "echo ready; exec sleep 600"]
    timeout = 60


@pytest.mark.parametrize("how", [{"kill_proc_tree": False}, {"kill_proc_tree": False, "timeout": -1},
                                 {"timeout": -1}, {}])
def test_terminate_of_a_shared_helper_with_another_holder_only_drops_the_hold(lpd, work_dir, how):
    first = XProcess(rootdir=work_dir, socket_path=lpd.socket, scope=work_dir)
    second = XProcess(rootdir=work_dir, socket_path=lpd.socket, scope=work_dir)
    try:
        pid, _ = first.ensure("srv", Server, shared=True)
        again, _ = second.ensure("srv", Server, shared=True)
        assert again == pid
        assert first.getinfo("srv").terminate(**how) == 0
        # The other holder still has it, and lpd still counts its hold.
        assert alive(pid) and second.getinfo("srv").isrunning()
        assert [p["holders"] for p in running_in(lpd, work_dir)] == [1]
        # The last holder's terminate stops it (tree or process alone).
        code = second.getinfo("srv").terminate(**how)
        assert code in ((1, -1) if how.get("timeout") == -1 else (1,))
        assert wait_gone(pid)
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("how", [{}, {"kill_proc_tree": False}], ids=["tree", "process-alone"])
def test_terminate_by_a_session_that_holds_nothing_leaves_a_leased_helper_to_its_holders(lpd, work_dir, how):
    """Second attack, N6: a session that never took the lease (no
    shared=True) tearing down must not stop the helper under those that hold
    it; pytest-xprocess, which has no leases, would."""
    holder = XProcess(rootdir=work_dir, socket_path=lpd.socket, scope=work_dir)
    bystander = XProcess(rootdir=work_dir, socket_path=lpd.socket, scope=work_dir)
    try:
        pid, _ = holder.ensure("srv", Server, shared=True)
        again, _ = bystander.ensure("srv", Server)
        assert again == pid
        assert bystander.getinfo("srv").terminate(**how) == 0
        assert alive(pid) and holder.getinfo("srv").isrunning()
        assert [p["holders"] for p in running_in(lpd, work_dir)] == [1]
        assert holder.getinfo("srv").terminate(**how) == 1  # the holder's own teardown stops it
        assert wait_gone(pid)
    finally:
        holder.close()
        bystander.close()


# -- finding 15: no /tmp/lpd-xprocess-* left by a session without pytest's cache -----------

def session_dirs(tmp):
    """The sessions' control roots under `tmp`: $TMPDIR/lpd-xprocess-u<uid>/s-*
    (the per-user directory stays: one per user), and any other
    lpd-xprocess-* directory."""
    found = []
    for name in os.listdir(tmp):
        path = os.path.join(tmp, name)
        if name == f"lpd-xprocess-u{os.geteuid()}":
            found += [os.path.join(path, n) for n in os.listdir(path)]
        elif name.startswith("lpd-xprocess-"):
            found.append(path)
    return found


NO_CACHE_TESTS = textwrap.dedent("""
    import sys

    import pytest
    from lpd_pytest.xprocess import ProcessStarter

    class Starter(ProcessStarter):
        pattern = "^ready"
        args = [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(600)"]
        timeout = 60

    @pytest.mark.parametrize("i", range(4))
    def test_helper(xprocess, worker_id, i):
        name = f"h-{worker_id}-{i}"
        pid, log = xprocess.ensure(name, lambda control_dir, process: Starter(control_dir, process))
        open(str(xprocess.getinfo(name).controldir / "state"), "w").close()
        assert xprocess.getinfo(name).terminate() == 1
""")


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_a_session_without_the_cache_leaves_no_control_directory(lpd, work_dir, workers):
    write_tests(work_dir, "test_nocache.py", NO_CACHE_TESTS)
    tmp = os.path.join(work_dir, "tmp")
    os.mkdir(tmp)
    code, out = finish(start_pytest(lpd, work_dir, "-p", "no:xprocess", *workers, env_extra={"TMPDIR": tmp}))
    assert code == 0, out
    assert "4 passed" in out, out
    assert session_dirs(tmp) == []


KEPT_TESTS = textwrap.dedent("""
    import os
    import sys

    from lpd_pytest.xprocess import ProcessStarter

    class Starter(ProcessStarter):
        pattern = "^ready"
        args = [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(600)"]
        timeout = 60

    def test_left_running(xprocess):
        xprocess.ensure("kept", Starter)
        xprocess.ensure("gone", Starter)
        assert xprocess.getinfo("gone").terminate() == 1
        os.symlink(os.environ["OUTSIDE"], str(xprocess.getinfo("gone").controldir / "link"))
""")


def test_the_control_directory_of_a_helper_left_running_stays_and_links_are_not_followed(lpd, work_dir):
    write_tests(work_dir, "test_kept.py", KEPT_TESTS)
    tmp = os.path.join(work_dir, "tmp")
    os.mkdir(tmp)
    outside = os.path.join(work_dir, "outside")
    os.mkdir(outside)
    write_tests(outside, "precious", "x")
    env = {"TMPDIR": tmp, "OUTSIDE": outside}
    code, out = finish(start_pytest(lpd, work_dir, "-p", "no:xprocess", "test_kept.py", env_extra=env))
    assert code == 0, out
    roots = session_dirs(tmp)
    # The helper still running keeps its cwd; the stopped one's went,
    # without following the link left in it.
    assert len(roots) == 1, roots
    assert sorted(os.listdir(roots[0])) == [".lpd-scope", "kept"]
    assert os.listdir(outside) == ["precious"]
    [kept] = running_in(lpd, work_dir)
    assert kept["name"] == "kept"

    # Once it has ended, the next session without the cache removes the
    # directory the ended session left.
    lpd.lpctl("kill", "--scope", work_dir, "kept")
    assert wait_gone(kept["pid"])
    write_tests(work_dir, "test_none.py", "def test_nothing(xprocess):\n    assert xprocess.rootdir\n")
    code, out = finish(start_pytest(lpd, work_dir, "-p", "no:xprocess", "test_none.py", env_extra=env))
    assert code == 0, out
    assert session_dirs(tmp) == []


# -- the harness: no helper of a test's lpd outlives the test ------------------------------

@pytest.mark.parametrize("cgroups", ["on", "off"])
def test_the_harness_kills_the_helpers_a_stopped_lpd_left_running(cgroups):
    d = Lpd()
    try:
        d.start(env=d.env(LPD_CGROUPS="off") if cgroups == "off" else None)
        started = d.lpctl_json("ensure", "h", "--pattern", "^ready", "--", "sh", "-c", "echo ready; exec sleep 600")
        d.stop()
        # Helpers outlive lpd on purpose (a restarted lpd takes them back) ...
        assert alive(started["pid"])
        # ... so the harness kills them when the test is done.
        d.kill_helpers()
        assert wait_gone(started["pid"])
        if cgroups == "on" and os.geteuid() == 0 and supervision_cgroup_dir() is not None:
            assert [n for n in os.listdir(supervision_cgroup_dir()) if n.startswith(f"t{d.pids[0]}-")] == []
    finally:
        if d.proc is not None:
            d.stop()
        shutil.rmtree(d.root, ignore_errors=True)
