"""Issue 14 (x14names): two users in one project with one helper name get
two helpers; neither's ensure reuses, nor its kill touches, the other's.
Throwaway users and a root lpd, as in test_shared_host.py."""

import json
import os
import pwd

import pytest

from lpd_harness import (lpd_for_group, project_for_users, run_as_user, staged_install, throwaway_users, user_admin,
                         wait_gone)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates users and runs a root lpd")

GROUP = "lpdscope"
USERS = {"a": "lpdscope_a", "b": "lpdscope_b"}


@pytest.fixture(scope="module")
def users():
    with throwaway_users(USERS, GROUP) as entries:
        yield entries

@pytest.fixture
def setting(users):
    """A root lpd, lpctl where the users may run it, and one project
    directory both users work in."""
    with project_for_users("lpd-scope-") as shared, lpd_for_group(GROUP) as d:
        open(os.path.join(shared, "pyproject.toml"), "w").close()
        yield d, staged_install()["lpctl"], shared


def as_user(user, d, lpctl, *args, cwd, check=True):
    return run_as_user(user, GROUP, [lpctl, *args], d.socket, cwd=cwd, check=check)



def alive(pid):
    return not wait_gone(pid, timeout=0)


def test_two_users_with_one_name_in_one_project_never_share_or_kill_each_others(users, setting):
    d, lpctl, shared = setting
    a, b = users["a"], users["b"]
    helper = ["--", "sh", "-c", "echo ready $(id -u); exec sleep 600"]
    mine = json.loads(as_user(a, d, lpctl, "--json", "ensure", "db", "--pattern", "^ready", *helper, cwd=shared).stdout)
    theirs = json.loads(as_user(b, d, lpctl, "--json", "ensure", "db", "--pattern", "^ready", *helper,
                                cwd=shared).stdout)
    # B's ensure started B's own helper rather than reusing A's.
    assert theirs["reused"] is False and theirs["pid"] != mine["pid"]
    assert mine["ready_line"] == f"ready {a.pw_uid}" and theirs["ready_line"] == f"ready {b.pw_uid}"
    assert mine["scope"] == theirs["scope"] == shared and mine["log_path"] != theirs["log_path"]

    # Each user's logs and kill reach their own helper.
    assert f"ready {b.pw_uid}" in as_user(b, d, lpctl, "logs", "db", cwd=shared).stdout
    killed = json.loads(as_user(b, d, lpctl, "--json", "kill", "db", cwd=shared).stdout)
    assert killed["pid"] == theirs["pid"] and wait_gone(theirs["pid"]) and alive(mine["pid"])
    # B has no db left in that project (its own ended one is found, not A's).
    again = json.loads(as_user(b, d, lpctl, "--json", "kill", "db", cwd=shared).stdout)
    assert again["was_running"] is False and again["pid"] == theirs["pid"] and alive(mine["pid"])
    # B sees A's helper as metadata, without its scope.
    rows = {(p["owner"], p["name"]): p for p in json.loads(as_user(b, d, lpctl, "--json", "ps", cwd=shared).stdout)
            ["processes"]}
    assert "scope" not in rows[(a.pw_uid, "db")] and "argv" not in rows[(a.pw_uid, "db")]
    # Root names A's by full name and owner.
    c = d.client()
    try:
        conflict = c.request("proc.info", full_name=shared + "::db")
        assert conflict["ok"] is False and conflict["error"]["code"] == "conflict", conflict
        info = c.request("proc.info", full_name=shared + "::db", owner=a.pw_uid)
        assert info["ok"] and info["result"]["pid"] == mine["pid"]
    finally:
        c.close()
    as_user(a, d, lpctl, "kill", "db", cwd=shared)
    assert wait_gone(mine["pid"])
