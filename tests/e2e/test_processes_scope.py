"""Issue 14 (x14names): helper names are scoped by project (and owner), a
connection can hold a helper (a lease) and lpd stops it once the last holder
is gone, every start keeps its own log (the last N), and readiness patterns
match Unicode text.

Every wait is an event: a reply, a pipe's end, an lpd event, a pidfd."""

import json
import os
import subprocess
import sys

import pytest

from lpd_harness import LPCTL_BIN, EventWaiter, gone, killed_if_left_running, wait_gone

HELPER = os.path.join(os.path.dirname(__file__), "helpers", "helper_server.py")
PY = sys.executable


def lpctl(lpd, *args, cwd=None, check=True):
    r = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, *args], capture_output=True, text=True, timeout=120,
                       env=lpd.env(), cwd=cwd)
    if check:
        assert r.returncode == 0, f"lpctl {args} exited {r.returncode}: {r.stdout}{r.stderr}"
    return r


def ensure_in(lpd, cwd, name, *helper_args, extra=(), pattern="ready to accept"):
    args = ["--json", "ensure", name, *extra]
    if pattern is not None:
        args += ["--pattern", pattern]
    return json.loads(lpctl(lpd, *args, "--", PY, HELPER, *helper_args, cwd=cwd).stdout)


def project(tmp_path, name, marker):
    d = tmp_path / name
    d.mkdir()
    (d / marker).write_text("")
    return str(d)




def ps_rows(lpd, cwd):
    """The human table: rows as lists of columns (split on runs of spaces)."""
    lines = lpctl(lpd, "ps", "-a", cwd=cwd).stdout.splitlines()
    # h14owner: the OWNER column (second) is left out here; test_lpctl_listings.py checks it.
    assert lines[0].split()[:3] == ["NAME", "OWNER", "SCOPE"]
    return [(lambda cells: cells[:1] + cells[2:])(line.split()) for line in lines[1:]]


# -- scopes ---------------------------------------------------------------------------


def test_two_projects_with_one_name_get_two_helpers_and_kill_only_their_own(lpd, tmp_path):
    p1 = project(tmp_path, "p1", "pyproject.toml")
    p2 = project(tmp_path, "p2", "pytest.ini")
    os.mkdir(os.path.join(p1, "sub"))
    one = ensure_in(lpd, os.path.join(p1, "sub"), "db")  # a subdirectory belongs to its project
    two = ensure_in(lpd, p2, "db")
    assert one["reused"] is False and two["reused"] is False and one["pid"] != two["pid"]
    assert one["scope"] == p1 and two["scope"] == p2
    assert one["full_name"] == p1 + "::db" and two["full_name"] == p2 + "::db"
    assert one["log_path"] != two["log_path"]
    assert ensure_in(lpd, p1, "db")["pid"] == one["pid"]  # reused within its own project

    rows = {row[1]: row for row in ps_rows(lpd, p1)}
    assert rows["."][0] == "db" and rows["."][2] == str(one["pid"])
    assert rows[p2][2] == str(two["pid"])
    assert {row[1] for row in ps_rows(lpd, str(tmp_path))} == {"p1", "p2"}  # short form inside cwd
    listed = lpd.lpctl_json("ps")["processes"]
    assert sorted(p["full_name"] for p in listed) == sorted([p1 + "::db", p2 + "::db"])

    # Each project's logs and kill reach its own helper only.
    assert f"pid={one['pid']}" in lpctl(lpd, "logs", "db", cwd=p1).stdout
    assert f"pid={two['pid']}" in lpctl(lpd, "logs", "db", cwd=p2).stdout
    killed = json.loads(lpctl(lpd, "--json", "kill", "db", cwd=p1).stdout)
    assert killed["pid"] == one["pid"] and killed["state"] == "killed" and killed["scope"] == p1
    assert wait_gone(one["pid"]) and not gone(two["pid"])
    # A third place has no db: lpctl then asks without a scope, and with two
    # of that name (p1's ended, p2's running) lpd names both rather than pick;
    # a full name reaches one from anywhere.
    elsewhere = lpctl(lpd, "kill", "db", cwd=str(tmp_path), check=False)
    assert elsewhere.returncode == 1 and "[conflict]" in elsewhere.stderr, elsewhere.stderr
    assert p1 + "::db" in elsewhere.stderr and p2 + "::db" in elsewhere.stderr
    assert not gone(two["pid"])
    killed = json.loads(lpctl(lpd, "--json", "kill", p2 + "::db", cwd="/").stdout)
    assert killed["pid"] == two["pid"] and wait_gone(two["pid"])


def test_raw_calls_name_a_helper_by_scope_or_full_name(lpd, tmp_path):
    p1 = project(tmp_path, "p1", "setup.cfg")
    p2 = project(tmp_path, "p2", ".git")
    one = ensure_in(lpd, p1, "web")
    two = ensure_in(lpd, p2, "web")
    c = lpd.client()
    try:
        assert c.request("proc.info", name="web", scope=p1)["result"]["pid"] == one["pid"]
        assert c.request("proc.info", full_name=p2 + "::web")["result"]["pid"] == two["pid"]
        ambiguous = c.request("proc.info", name="web")  # an old client: two of that name
        assert ambiguous["ok"] is False and ambiguous["error"]["code"] == "conflict", ambiguous
        assert p1 + "::web" in ambiguous["error"]["message"] and p2 + "::web" in ambiguous["error"]["message"]
        bad = c.request("proc.info", name="web", scope="relative/dir")
        assert bad["ok"] is False and bad["error"]["code"] == "bad_request"
        missing = c.request("proc.info", name="web", scope=str(tmp_path))
        assert missing["ok"] is False and missing["error"]["code"] == "not_found"
    finally:
        c.close()
    lpctl(lpd, "kill", "web", cwd=p1)
    lpctl(lpd, "kill", "web", cwd=p2)
    assert wait_gone(one["pid"]) and wait_gone(two["pid"])


def test_scopes_survive_an_lpd_restart(lpd, tmp_path):
    p1 = project(tmp_path, "p1", "tox.ini")
    p2 = project(tmp_path, "p2", "setup.py")
    one = ensure_in(lpd, p1, "db")
    two = ensure_in(lpd, p2, "db")
    lpd.stop()
    lpd.start()
    listed = {p["full_name"]: p for p in lpd.lpctl_json("ps")["processes"]}
    assert listed[p1 + "::db"]["pid"] == one["pid"] and listed[p1 + "::db"]["adopted"] is True
    assert listed[p2 + "::db"]["pid"] == two["pid"] and listed[p2 + "::db"]["scope"] == p2
    assert ensure_in(lpd, p2, "db")["reused"] is True
    lpctl(lpd, "kill", "db", cwd=p2)
    assert wait_gone(two["pid"]) and not gone(one["pid"])
    lpctl(lpd, "kill", "db", cwd=p1)
    assert wait_gone(one["pid"])


def test_a_record_from_before_scopes_is_the_global_scope_and_moves_to_its_new_name(lpd_unstarted, tmp_path):
    d = lpd_unstarted
    sleeper = subprocess.Popen(["sleep", "1000"])
    try:
        with open(f"/proc/{sleeper.pid}/stat") as f:
            start_time = int(f.read().rsplit(")", 1)[1].split()[19])
        os.makedirs(os.path.join(d.state_dir, "procs"))
        with open(os.path.join(d.state_dir, "procs", "old.json"), "w") as f:
            json.dump({"name": "old", "pid": sleeper.pid, "start_time": start_time, "state": "ready",
                       "owner": os.getuid(), "argv": ["sleep", "1000"], "cwd": "/", "pattern": "x",
                       "log_path": os.path.join(d.state_dir, "logs", "old.log")}, f)
        d.start()
        [p] = d.lpctl_json("ps")["processes"]
        assert p["name"] == "old" and p["scope"] == "" and p["full_name"] == "old" and p["pid"] == sleeper.pid
        assert sorted(os.listdir(os.path.join(d.state_dir, "procs"))) == [f"old.u{os.getuid()}.json"]
        # From inside a project, a name the project lacks reaches the global one.
        proj = project(tmp_path, "p", "pyproject.toml")
        killed = json.loads(lpctl(d, "--json", "kill", "old", cwd=proj).stdout)
        assert killed["was_running"] is True and sleeper.wait(timeout=60) is not None
    finally:
        sleeper.kill()
        sleeper.wait()


# -- leases ---------------------------------------------------------------------------------


def lease(client, name, scope, *helper_args, **fields):
    reply = client.request("proc.ensure", name=name, scope=scope, pattern="ready to accept", lease=True,
                           argv=[PY, HELPER, *helper_args], cwd="/", env={"PATH": os.environ["PATH"]}, **fields)
    assert reply["ok"], reply
    return reply["result"]


def test_a_lease_ends_with_its_connection_and_the_last_one_stops_the_helper(lpd, tmp_path):
    scope = str(tmp_path)
    events = EventWaiter(lpd, types=["process.holders", "process.killed"])
    first, second = lpd.client(), lpd.client()
    try:
        got = lease(first, "shared", scope)
        assert got["holders"] == 1 and got["leased"] is True
        again = lease(second, "shared", scope)
        assert again["reused"] is True and again["pid"] == got["pid"] and again["holders"] == 2
        events.wait("process.holders", holders=2)
        first.close()
        # The first holder's end is seen, and the helper keeps running for the second.
        held = events.wait("process.holders", holders=1)
        assert held["state"] == "ready" and not gone(got["pid"])
        assert lpd.client().request("proc.info", name="shared", scope=scope)["result"]["holders"] == 1
        second.close()
        killed = events.wait("process.killed", name="shared")
        assert killed["pid"] == got["pid"] and wait_gone(got["pid"])
    finally:
        first.close()
        second.close()
        events.close()


def test_kill_by_one_holder_only_lets_go_while_another_holds(lpd, tmp_path):
    scope = str(tmp_path)
    first, second, third = lpd.client(), lpd.client(), lpd.client()
    try:
        got = lease(first, "db", scope)
        lease(second, "db", scope)
        released = first.request("proc.kill", name="db", scope=scope)
        assert released["ok"] and released["result"]["released"] is True and released["result"]["holders"] == 1
        assert not gone(got["pid"])
        # proc.release by a connection that holds nothing changes nothing.
        nothing = first.request("proc.release", name="db", scope=scope)["result"]
        assert nothing["released"] is False and nothing["holders"] == 1
        # The last holder's kill kills.
        killed = second.request("proc.kill", name="db", scope=scope, timeout=60)
        assert killed["ok"] and killed["result"]["was_running"] is True and killed["result"]["state"] == "killed"
        assert wait_gone(got["pid"])

        # A non-holder (a shell's lpctl) kills it under its holders, as before leases.
        got = lease(first, "db", scope)
        lease(second, "db", scope)
        out = lpctl(lpd, "--json", "kill", "db", cwd=scope)
        assert json.loads(out.stdout)["was_running"] is True and wait_gone(got["pid"])
        # force from a holder too.
        got = lease(first, "db", scope)
        lease(third, "db", scope)
        forced = first.request("proc.kill", name="db", scope=scope, force=True)
        assert forced["ok"] and forced["result"]["was_running"] is True and wait_gone(got["pid"])
    finally:
        for c in (first, second, third):
            c.close()


def test_lpctl_ensure_lease_holds_for_as_long_as_lpctl_runs(lpd, tmp_path):
    scope = str(tmp_path)
    events = EventWaiter(lpd, types=["process.killed"])
    holder = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "ensure", "--lease", "leased", "--pattern",
                               "ready to accept", "--", PY, HELPER], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=lpd.env(), cwd=scope)
    try:
        with killed_if_left_running(holder):
            # lpctl closes its stdout once the helper is ready and it holds it.
            out = holder.stdout.read()
            assert "leased: started" in out and "holding " + scope + "::leased" in out, out + holder.stderr.read()
            assert holder.poll() is None
            [p] = lpd.lpctl_json("ps")["processes"]
            assert p["state"] == "ready" and p["holders"] == 1 and p["leased"] is True
            # HOLDERS (after OWNER, h14owner)
            assert lpctl(lpd, "ps", cwd=scope).stdout.splitlines()[1].split()[5] == "1"
            holder.terminate()
            holder.wait(timeout=60)
            killed = events.wait("process.killed", name="leased")
            assert killed["pid"] == p["pid"] and wait_gone(p["pid"])
    finally:
        events.close()


def test_lpctl_ensure_lease_takes_its_lease_again_after_lpd_restarts(lpd, tmp_path):
    """lpd keeps a leased helper 30 s after a restart for its holders to come
    back: lpctl ensure --lease reconnects and holds it again, so the helper
    is not stopped under the script that holds it."""
    scope = str(tmp_path)
    holder = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "ensure", "--lease", "kept", "--pattern",
                               "ready to accept", "--", PY, HELPER], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=lpd.env(), cwd=scope)
    with killed_if_left_running(holder):
        out = holder.stdout.read()  # closed once it holds the helper
        assert "holding " + scope + "::kept" in out, out + holder.stderr.read()
        [before] = lpd.lpctl_json("ps")["processes"]
        lpd.kill9()
        lpd.start()
        events = EventWaiter(lpd, types=["process.holders"])
        try:
            [p] = lpd.lpctl_json("ps")["processes"]
            while p.get("holders", 0) < 1:
                p = events.wait("process.holders", timeout=60, name="kept")
        finally:
            events.close()
        assert p["pid"] == before["pid"] and holder.poll() is None
        [p] = lpd.lpctl_json("ps")["processes"]
        assert p["state"] == "ready" and p["holders"] == 1
        events = EventWaiter(lpd, types=["process.killed"])
        holder.terminate()
        _, err = holder.communicate(timeout=60)
        assert "lost lpd" in err and "lpd is back; holding kept again" in err, err
        killed = events.wait("process.killed", name="kept")
        events.close()
        assert killed["pid"] == before["pid"] and wait_gone(before["pid"])


# -- logs per start ----------------------------------------------------------------------------


def test_each_start_keeps_its_own_log_and_the_last_n_are_kept(lpd, tmp_path):
    scope = str(tmp_path)
    starts = []
    for _ in range(5):
        starts.append(ensure_in(lpd, scope, "db", extra=("--restart", "--keep-logs", "3")))
    pids = [s["pid"] for s in starts]
    assert len(set(pids)) == 5
    # The log a start was given keeps its name and content through the next
    # restart (pytest-xprocess#91 lost it to a rename).
    for s in starts[2:]:
        with open(s["log_path"]) as f:
            assert f"pid={s['pid']}" in f.read()
    for s in starts[:2]:
        assert not os.path.exists(s["log_path"])
    last = starts[-1]
    assert last["logs"] == [s["log_path"] for s in reversed(starts[2:])]
    info = lpd.client().request("proc.info", name="db", scope=scope)["result"]
    assert info["logs"] == last["logs"] and info["log_path"] == last["log_path"] and info["start_number"] == 5
    assert os.path.basename(last["log_path"]).endswith(".5.log")
    current = lpctl(lpd, "logs", "db", cwd=scope).stdout
    assert f"pid={last['pid']}" in current and f"pid={starts[-2]['pid']}" not in current
    lpctl(lpd, "kill", "db", cwd=scope)


# -- patterns --------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", [r"pr.t", r"\w+ prêt$", r"(?i)SERVEUR PRÊT", r"^\W*\w{7} \w{4}$"])
def test_non_ascii_patterns_match_text(lpd, tmp_path, pattern):
    script = "import sys, time; sys.stdout.buffer.write(b'\\xff\\xfe not utf-8 \\xc3\\n'); " \
             "print('serveur prêt', flush=True); time.sleep(1000)"
    r = lpctl(lpd, "--json", "ensure", "fr", "--pattern", pattern, "--", PY, "-c", script, cwd=str(tmp_path))
    result = json.loads(r.stdout)
    assert result["state"] == "ready" and result["ready_line"] == "serveur prêt"
    lpctl(lpd, "kill", "fr", cwd=str(tmp_path))


def test_a_line_of_invalid_utf8_is_matched_sensibly(lpd, tmp_path):
    """Each byte that is not UTF-8 reads as one U+FFFD, as Python's
    errors="replace" has it: two bad bytes are two characters."""
    script = "import sys, time; sys.stdout.buffer.write(b'ready \\xff\\xfe here\\n'); sys.stdout.flush(); time.sleep(1000)"
    r = lpctl(lpd, "--json", "ensure", "bytes", "--pattern", r"^ready \W{2} here$", "--", PY, "-c", script,
              cwd=str(tmp_path))
    assert json.loads(r.stdout)["state"] == "ready"
    r = lpctl(lpd, "ensure", "bytes1", "--timeout", "1", "--pattern", r"^ready . here$", "--", PY, "-c", script,
              cwd=str(tmp_path), check=False)
    assert r.returncode == 1 and "[timeout]" in r.stderr, r.stderr
    lpctl(lpd, "kill-all", "--all-projects")  # h14owner: kill-all alone is this project's


def test_no_pattern_means_ready_once_started(lpd, tmp_path):
    result = ensure_in(lpd, str(tmp_path), "plain", "--never", pattern=None)
    assert result["state"] == "ready" and result["ready_line"] == "" and result["reused"] is False
    info = lpd.client().request("proc.info", name="plain", scope=str(tmp_path))["result"]
    assert info["pattern"] is None and info["alive"] is True
    lpctl(lpd, "kill", "plain", cwd=str(tmp_path))
