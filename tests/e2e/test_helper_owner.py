"""Issue 14 (h14owner): on a shared CI host, root and lpd's admin group say
whose helper they mean (`--owner USER|UID`) when several users have one of
the same name and scope; lpd never picks one for them, and `lpctl ps` shows
each helper's OWNER. kill-all stops only the caller's own helpers (another
user's with --owner, for admins). Throwaway users and a root lpd, as in
test_shared_host.py."""

import grp
import json
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from lpd_harness import LPCTL_BIN, Lpd, user_admin, wait_gone, throwaway_users

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates users and runs a root lpd")

GROUP = "lpdown"          # may connect
ADMIN_GROUP = "lpdownadm"  # lpd's --admin-group
USERS = {"a": "lpdown_a", "b": "lpdown_b", "admin": "lpdown_adm"}


@pytest.fixture(scope="module")
def users():
    with throwaway_users(USERS, GROUP, ADMIN_GROUP, admins=("admin",)) as entries:
        yield entries

@pytest.fixture
def setting(users):
    """A root lpd, lpctl where the users may run it, and two project
    directories every user may work in."""
    where = tempfile.mkdtemp(prefix="lpd-own-", dir="/tmp")
    os.chmod(where, 0o755)
    lpctl = os.path.join(where, "lpctl")
    shutil.copy2(LPCTL_BIN, lpctl)
    os.chmod(lpctl, 0o755)
    projects = []
    for name in ("p1", "p2"):
        project = os.path.join(where, name)
        os.mkdir(project)
        os.chmod(project, 0o777)
        open(os.path.join(project, "pyproject.toml"), "w").close()
        projects.append(project)
    d = Lpd()
    os.chmod(d.root, 0o755)
    d.start("--socket-group", GROUP, "--admin-group", ADMIN_GROUP)
    yield d, lpctl, projects
    for user in USERS.values():  # whatever a failed test left running
        subprocess.run([lpctl, "--socket", d.socket, "kill-all", "--all-projects", "--force", "--owner", user],
                       capture_output=True, timeout=120)
    d.stop()
    shutil.rmtree(d.root, ignore_errors=True)
    shutil.rmtree(where, ignore_errors=True)


def groups_of(user):
    return [g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem]


def run_lpctl(user, d, lpctl, *args, cwd, check=True):
    """lpctl as `user` (their uid, gid and groups), or as root when user is None."""
    who = {} if user is None else dict(user=user.pw_uid, group=user.pw_gid, extra_groups=groups_of(user))
    home = "/root" if user is None else user.pw_dir
    r = subprocess.run([lpctl, *args], cwd=cwd, env={"PATH": "/usr/bin:/bin", "HOME": home, "LPD_SOCKET": d.socket},
                       capture_output=True, text=True, timeout=120, **who)
    if check:
        assert r.returncode == 0, f"lpctl {args}: {r.returncode}\n{r.stdout}{r.stderr}"
    return r


def ensure(user, d, lpctl, name, cwd):
    helper = ["--", "sh", "-c", "echo ready $(id -un); exec sleep 600"]
    return json.loads(run_lpctl(user, d, lpctl, "--json", "ensure", name, "--pattern", "^ready", *helper,
                                cwd=cwd).stdout)


def alive(pid):
    return not wait_gone(pid, timeout=0)


def ps_rows(user, d, lpctl, *args, cwd):
    """`lpctl ps` as a table: one dict per row, keyed by the header."""
    lines = run_lpctl(user, d, lpctl, "ps", *args, cwd=cwd).stdout.splitlines()
    header = lines[0].split()
    return [dict(zip(header, line.split())) for line in lines[1:]]


def test_root_and_admins_say_whose_helper_and_are_never_handed_one(users, setting):
    d, lpctl, (project, _) = setting
    a, b, admin = users["a"], users["b"], users["admin"]
    mine = ensure(a, d, lpctl, "db", project)
    theirs = ensure(b, d, lpctl, "db", project)
    assert mine["pid"] != theirs["pid"]

    # ps shows whose each is (the user's name), for root and for the users.
    rows = ps_rows(None, d, lpctl, cwd=project)
    assert {(r["NAME"], r["OWNER"], r["PID"]) for r in rows} == {
        ("db", a.pw_name, str(mine["pid"])), ("db", b.pw_name, str(theirs["pid"]))}
    assert [r["OWNER"] for r in ps_rows(b, d, lpctl, "--owner", a.pw_name, cwd=project)] == [a.pw_name]
    only_b = json.loads(run_lpctl(None, d, lpctl, "--json", "ps", "--owner", str(b.pw_uid), cwd=project).stdout)
    assert [p["pid"] for p in only_b["processes"]] == [theirs["pid"]]

    # Without --owner, root and an admin are refused, told whose they are.
    for who in (None, admin):
        for command in (["kill", "db"], ["logs", "db"]):
            r = run_lpctl(who, d, lpctl, *command, cwd=project, check=False)
            assert r.returncode == 1 and "[conflict]" in r.stderr, r.stderr
            assert "ambiguous" in r.stderr and a.pw_name in r.stderr and b.pw_name in r.stderr, r.stderr
            assert "--owner" in r.stderr
    assert alive(mine["pid"]) and alive(theirs["pid"])

    # With it, each gets the one they named (by name or by uid).
    assert f"ready {b.pw_name}" in run_lpctl(None, d, lpctl, "logs", "db", "--owner", b.pw_name, cwd=project).stdout
    log = run_lpctl(admin, d, lpctl, "logs", "db", "--owner", str(a.pw_uid), cwd=project).stdout
    assert f"ready {a.pw_name}" in log and b.pw_name not in log
    killed = json.loads(run_lpctl(admin, d, lpctl, "--json", "kill", "db", "--owner", a.pw_name,
                                  cwd=project).stdout)
    assert killed["pid"] == mine["pid"] and killed["owner"] == a.pw_uid
    assert wait_gone(mine["pid"]) and alive(theirs["pid"])

    # A's helper has ended: reading still asks whose (A's log is a thing
    # one reads), killing means the one that runs.
    r = run_lpctl(None, d, lpctl, "logs", "db", cwd=project, check=False)
    assert r.returncode == 1 and "ambiguous" in r.stderr, r.stderr
    killed = json.loads(run_lpctl(None, d, lpctl, "--json", "kill", "db", cwd=project).stdout)
    assert killed["pid"] == theirs["pid"] and killed["was_running"] is True
    assert wait_gone(theirs["pid"])

    # An owner with no helper of that name, and a user that does not exist.
    r = run_lpctl(None, d, lpctl, "kill", "db", "--owner", admin.pw_name, cwd=project, check=False)
    assert r.returncode == 1 and "[not_found]" in r.stderr and admin.pw_name in r.stderr, r.stderr
    r = run_lpctl(None, d, lpctl, "kill", "db", "--owner", "no-such-user-lpd", cwd=project, check=False)
    assert r.returncode == 64 and "no user named" in r.stderr, r.stderr


def test_a_user_naming_another_owner_is_refused_as_before(users, setting):
    d, lpctl, (project, _) = setting
    a, b = users["a"], users["b"]
    mine = ensure(a, d, lpctl, "db", project)
    ensure(b, d, lpctl, "db", project)
    for command in (["kill", "db"], ["logs", "db"]):
        r = run_lpctl(b, d, lpctl, *command, "--owner", a.pw_name, cwd=project, check=False)
        assert r.returncode == 1 and "[permission_denied]" in r.stderr, r.stderr
        assert f"belongs to uid {a.pw_uid}" in r.stderr, r.stderr
    r = run_lpctl(b, d, lpctl, "kill-all", "--owner", a.pw_name, cwd=project, check=False)
    assert r.returncode == 1 and "[permission_denied]" in r.stderr and a.pw_name in r.stderr, r.stderr
    assert alive(mine["pid"])
    # B's own kill still reaches B's own, never A's.
    run_lpctl(b, d, lpctl, "kill", "db", cwd=project)
    assert alive(mine["pid"])


def test_kill_all_stops_the_callers_own_helpers_of_this_project(users, setting):
    d, lpctl, (p1, p2) = setting
    a, b, admin = users["a"], users["b"], users["admin"]
    a1 = ensure(a, d, lpctl, "web", p1)
    a2 = ensure(a, d, lpctl, "web", p2)
    b1 = ensure(b, d, lpctl, "web", p1)

    # Root's kill-all is root's own: it has none.
    assert run_lpctl(None, d, lpctl, "kill-all", "--all-projects", cwd=p1).stdout.strip() == "nothing to kill"
    assert alive(a1["pid"]) and alive(a2["pid"]) and alive(b1["pid"])

    # A's kill-all in p1: A's helper of p1 only.
    out = run_lpctl(a, d, lpctl, "kill-all", cwd=p1).stdout
    assert f"killed {a1['full_name']} (pid {a1['pid']})" in out, out  # h14fixB: by its full name
    assert wait_gone(a1["pid"]) and alive(a2["pid"]) and alive(b1["pid"])

    # An admin stops B's helpers by owner; A's in p2 stays.
    result = json.loads(run_lpctl(admin, d, lpctl, "--json", "kill-all", "--all-projects", "--owner", b.pw_name,
                                  cwd=p2).stdout)
    assert [k["pid"] for k in result["killed"]] == [b1["pid"]] and result["kept"] == []
    assert wait_gone(b1["pid"]) and alive(a2["pid"])

    out = run_lpctl(a, d, lpctl, "kill-all", "--all-projects", cwd=p1).stdout
    assert f"killed {a2['full_name']} (pid {a2['pid']})" in out, out
    assert wait_gone(a2["pid"])
