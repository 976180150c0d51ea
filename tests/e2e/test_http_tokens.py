"""issue 16 (h16tok): one HTTP token per user. A root lpd shared by a CI
host's users gives each who asks on its socket (`lpctl dashboard`, the
http.token op) a token of their own, and a request with it acts as that
user: run as them, seeing and acting on what they may through lpctl, and
nothing more. Throwaway users (lpd_harness.throwaway_users), so most tests
need root; every wait is an event (an HTTP reply, a WebSocket frame, a
process exit); the timeouts only bound how long a failure takes to show."""

import asyncio
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import uuid

import pytest

websockets = pytest.importorskip("websockets")
import websockets.exceptions  # noqa: E402  (a lazy attribute until a client module loads it)

from lpd_harness import LPD_BIN, Lpd, RawClient, remove_user, staged_install, throwaway_users, user_admin  # noqa: E402

from http_harness import WAIT, Api, call, job_frame, next_frame  # noqa: E402

GROUP = "lpdtok"
USERS = {"a": "lpdtok_a", "b": "lpdtok_b"}

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="creates users and runs a root lpd")

# The first test says whose it ran as (and a marker only its owner may read);
# the second runs until the job is stopped.
SUITE = """
import os
import threading

def test_who():
    print("UID=%d MARKER=%s" % (os.getuid(), os.environ.get("NOPE", "{marker}")), flush=True)
    print("HOME=%s USER=%s PWD=%s SECRET=%s" % (os.environ.get("HOME"), os.environ.get("USER"),
          os.environ.get("PWD"), os.environ.get("ROOT_LPD_SECRET", "unset")), flush=True)

def test_wait():
    threading.Event().wait()
"""


@pytest.fixture(scope="module")
def users():
    with throwaway_users(USERS, GROUP) as entries:
        yield entries


def start_root_lpd(d):
    # ROOT_LPD_SECRET: a variable of root lpd's own that no user's job may see.
    return d.start("--socket-group", GROUP, "--http", "127.0.0.1:0",
                   env=d.env(PATH="/usr/bin:/bin:" + os.environ.get("PATH", ""), ROOT_LPD_SECRET="root-only"))


@pytest.fixture
def root_lpd(users):
    d = Lpd(lpd_bin=staged_install()["lpd"])
    os.chmod(d.root, 0o755)  # the users must reach the socket inside
    start_root_lpd(d)
    yield d
    if d.proc is not None:
        d.kill_helpers()
        d.stop()
    shutil.rmtree(d.root, ignore_errors=True)


def as_user(user, lpd, *args, check=False):
    """lpctl as `user` (their uid, gid and groups), as a CI runner would run it."""
    groups = [g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem]
    env = {"PATH": "/usr/bin:/bin", "HOME": user.pw_dir, "USER": user.pw_name, "LPD_SOCKET": lpd.socket}
    result = subprocess.run([staged_install()["lpctl"], *args], user=user.pw_uid, group=user.pw_gid,
                            extra_groups=groups, cwd=user.pw_dir, env=env, capture_output=True, text=True,
                            timeout=WAIT)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def dashboard(user, lpd, *args):
    """`lpctl --json dashboard` as `user`: the http.token reply."""
    return json.loads(as_user(user, lpd, "--json", "dashboard", *args, check=True).stdout)


def api_with(lpd, token):
    api = Api(lpd)
    api.token = token
    return api


def owner_token(lpd):
    with open(os.path.join(lpd.state_dir, "http.token")) as f:
        return f.read().strip()


def suite_of(user, marker):
    """A directory of `user`'s holding SUITE."""
    path = tempfile.mkdtemp(prefix="lpdtok-", dir="/tmp")
    with open(os.path.join(path, "test_tok.py"), "w") as f:
        f.write(SUITE.replace("{marker}", marker))
    for name in (path, os.path.join(path, "test_tok.py")):
        os.chown(name, user.pw_uid, user.pw_gid)
    os.chmod(path, 0o755)
    return path


async def opened(ws):
    """Waits until lpd serves the WebSocket (a reply to a ping on it), so its
    stream has begun before the test acts."""
    await ws.send(json.dumps({"id": "opened", "op": "ping"}))
    await next_frame(ws, lambda f: f["type"] == "reply" and f["payload"].get("id") == "opened")


@needs_root
def test_each_user_gets_a_token_of_their_own_kept_by_lpd(root_lpd, users):
    a, b = users["a"], users["b"]
    mine_a, mine_b = dashboard(a, root_lpd), dashboard(b, root_lpd)
    root = owner_token(root_lpd)
    assert len({mine_a["token"], mine_b["token"], root}) == 3
    for user, mine in ((a, mine_a), (b, mine_b)):
        assert len(mine["token"]) == 64 and mine["uid"] == user.pw_uid and mine["own_user"] is False
        assert mine["url"] == f"http://{mine['address']}/#token={mine['token']}"
        path = os.path.join(root_lpd.state_dir, "http-tokens", str(user.pw_uid))
        assert mine["token_file"] == path
        st = os.lstat(path)
        assert stat.S_ISREG(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600
        with open(path) as f:  # h16srv: bound to the user it was made for
            assert json.loads(f.read()) == {"token": mine["token"], "user": user.pw_name, "home": user.pw_dir}
    assert stat.S_IMODE(os.stat(os.path.join(root_lpd.state_dir, "http-tokens")).st_mode) == 0o700
    assert dashboard(a, root_lpd)["token"] == mine_a["token"]  # asked again: the same one
    # lpd's own user (root) gets http.token.
    own = json.loads(root_lpd.lpctl("--json", "dashboard").stdout)
    assert own["token"] == root and own["own_user"] is True and own["uid"] == 0
    assert own["token_file"] == os.path.join(root_lpd.state_dir, "http.token")
    # The human form: the URL to open, and where the token is.
    text = as_user(a, root_lpd, "dashboard", check=True).stdout
    assert mine_a["url"] in text and "kept by lpd in" in text and str(a.pw_uid) in text
    # lpctl status points a user who is not lpd's to their own token, not to a root-only file.
    status = as_user(a, root_lpd, "status", check=True).stdout
    assert "lpctl dashboard" in status and "http.token" not in status
    assert "http.token" in root_lpd.lpctl("status").stdout
    # Every token works; a made-up one does not.
    for token in (mine_a["token"], mine_b["token"], root):
        assert api_with(root_lpd, token).request("GET", "/jobs")[0] == 200
    status, _, body = api_with(root_lpd, "0" * 64).request("GET", "/jobs")
    assert status == 401 and "lpctl dashboard" in body["error"]


@needs_root
def test_a_token_acts_as_its_user_and_sees_only_what_that_user_may(root_lpd, users):
    """Each user has a job table of their own, as if each ran their own
    relay-run server: another user's job is not found, its frames never come,
    and the same id is free for each."""
    a, b = users["a"], users["b"]
    api_a = api_with(root_lpd, dashboard(a, root_lpd)["token"])
    api_b = api_with(root_lpd, dashboard(b, root_lpd)["token"])
    api_root = api_with(root_lpd, owner_token(root_lpd))
    marker = "secret-" + uuid.uuid4().hex
    suite = suite_of(a, marker)

    async def scenario():
        async with api_a.ws() as ws_a, api_b.ws() as ws_b:
            await opened(ws_a)
            await opened(ws_b)
            status, _, job = await call(api_a.request, "POST", "/jobs",
                                        {"args": ["-q", "-s", "-p", "no:cacheprovider", "test_tok.py"],
                                         "id": "mine", "cwd": suite})
            assert status == 201, job
            await next_frame(ws_a, lambda f: f["type"] == "test" and f["payload"].get("event") == "test.start"
                             and f["payload"].get("nodeid") == "test_tok.py::test_wait")
            # B (and root's token) do not see A's job at all, nor can act on it.
            for api in (api_b, api_root):
                for method, path, body in (("GET", "/jobs/mine", None),
                                           ("POST", "/jobs/mine/actions", {"action": "stop"}),
                                           ("DELETE", "/jobs/mine", None)):
                    status, _, reply = await call(api.request, method, path, body)
                    assert status == 404, (method, path, reply)
                status, _, listed = await call(api.request, "GET", "/jobs")
                assert status == 200 and listed == [], listed
            # A stops it: terminating, then done.
            status, _, job = await call(api_a.request, "POST", "/jobs/mine/actions", {"action": "stop"})
            assert status == 200 and job["state"] == "terminating", job
            done_a = await next_frame(ws_a, job_frame("mine", "done"))
            # Everything B's WebSocket got until now: a reply to B's own request
            # comes after any frame sent to it when A's job ended.
            seen_b = []
            await ws_b.send(json.dumps({"id": "sync", "op": "ping"}))
            await next_frame(ws_b, lambda f: f["type"] == "reply" and f["payload"].get("id") == "sync", seen_b)
            # The same id is B's own to use.
            status, _, job_b = await call(api_b.request, "POST", "/jobs",
                                          {"args": ["--version"], "id": "mine", "cwd": "/tmp"})
            assert status == 201, job_b
            done_b = await next_frame(ws_b, job_frame("mine", "done"))
            return done_a, seen_b, done_b

    try:
        done_a, seen_b, done_b = asyncio.run(scenario())
    finally:
        shutil.rmtree(suite, ignore_errors=True)
    # The job ran as A, and A sees its output.
    assert f"UID={a.pw_uid} MARKER={marker}" in done_a["payload"]["text"], done_a
    status, _, job = api_a.request("GET", "/jobs/mine")
    assert status == 200 and f"UID={a.pw_uid}" in job["text"]
    # ... with a login's environment of A's, not root lpd's (as lpctl run gives the caller's).
    assert f"HOME={a.pw_dir} USER={a.pw_name} PWD={suite} SECRET=unset" in job["text"], job["text"]
    assert "lpd: run_id" not in job["text"]  # pytest's own output, as relay-run's text is
    # B got none of A's job frames, nor A's output in any event.
    assert not [f for f in seen_b if f["type"] == "job"], seen_b
    assert marker not in json.dumps(seen_b)
    # B's own "mine" ran as B, and is B's to delete; A's is untouched.
    assert done_b["payload"]["returncode"] == 0 and "pytest" in done_b["payload"]["text"], done_b
    assert api_b.request("DELETE", "/jobs")[0] == 204
    status, _, job = api_a.request("GET", "/jobs/mine")
    assert status == 200 and marker in job["text"]
    assert api_a.request("DELETE", "/jobs/mine")[0] == 204
    assert root_lpd.ping()


@needs_root
def test_a_rotated_token_is_refused_at_once_and_its_websockets_closed(root_lpd, users):
    a = users["a"]
    old = dashboard(a, root_lpd)["token"]
    api = api_with(root_lpd, old)

    async def scenario():
        async with api.ws() as ws:
            await opened(ws)
            new = await call(dashboard, a, root_lpd, "--rotate")
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), WAIT)
            return new, closed.value

    new, closed = asyncio.run(scenario())
    # h16srv: a close frame saying why (1008 policy violation), not a dropped connection (1006).
    assert closed.rcvd is not None, closed
    assert (closed.rcvd.code, closed.rcvd.reason) == (1008, "token rotated")
    assert new["rotated"] is True and new["token"] != old
    assert api.request("GET", "/jobs")[0] == 401
    assert api_with(root_lpd, new["token"]).request("GET", "/jobs")[0] == 200
    assert dashboard(a, root_lpd)["token"] == new["token"]
    # root's own token rotates too (http.token rewritten); the users' stay.
    before = owner_token(root_lpd)
    rotated = json.loads(root_lpd.lpctl("--json", "dashboard", "--rotate").stdout)
    assert rotated["token"] == owner_token(root_lpd) != before
    assert api_with(root_lpd, before).request("GET", "/jobs")[0] == 401
    assert api_with(root_lpd, new["token"]).request("GET", "/jobs")[0] == 200


@needs_root
def test_tokens_survive_a_restart(root_lpd, users):
    a, b = users["a"], users["b"]
    token_a, token_b = dashboard(a, root_lpd)["token"], dashboard(b, root_lpd)["token"]
    root_lpd.stop()
    start_root_lpd(root_lpd)
    assert dashboard(a, root_lpd)["token"] == token_a
    for token in (token_a, token_b):
        assert api_with(root_lpd, token).request("GET", "/jobs")[0] == 200


@needs_root
def test_a_link_planted_at_a_token_file_is_never_followed(root_lpd, users):
    a, b = users["a"], users["b"]
    old_b = dashboard(b, root_lpd)["token"]
    tokens_dir = os.path.join(root_lpd.state_dir, "http-tokens")
    victim = os.path.join(root_lpd.root, "victim")
    with open(victim, "w") as f:
        f.write("victim\n")
    os.chmod(victim, 0o600)

    # Planted while lpd is stopped: the next lpd does not read through it.
    root_lpd.stop()
    path_b = os.path.join(tokens_dir, str(b.pw_uid))
    os.unlink(path_b)
    os.symlink(victim, path_b)
    start_root_lpd(root_lpd)
    assert api_with(root_lpd, old_b).request("GET", "/jobs")[0] == 401
    new_b = dashboard(b, root_lpd)["token"]
    assert new_b != old_b and api_with(root_lpd, new_b).request("GET", "/jobs")[0] == 200
    assert not os.path.islink(path_b) and stat.S_IMODE(os.lstat(path_b).st_mode) == 0o600
    with open(victim) as f:
        assert f.read() == "victim\n"

    # Planted while lpd runs: a rotation replaces the link, never writes through it.
    dashboard(a, root_lpd)
    path_a = os.path.join(tokens_dir, str(a.pw_uid))
    os.unlink(path_a)
    os.symlink(victim, path_a)
    new_a = dashboard(a, root_lpd, "--rotate")["token"]
    assert not os.path.islink(path_a)
    with open(path_a) as f:
        assert json.loads(f.read())["token"] == new_a  # h16srv: with the user it was made for
    with open(victim) as f:
        assert f.read() == "victim\n"

    # The directory itself replaced by a link: refused, with the reason, nothing written there.
    root_lpd.stop()
    elsewhere = os.path.join(root_lpd.root, "elsewhere")
    os.mkdir(elsewhere, 0o700)
    shutil.rmtree(tokens_dir)
    os.symlink(elsewhere, tokens_dir)
    start_root_lpd(root_lpd)
    refused = as_user(a, root_lpd, "dashboard")
    assert refused.returncode != 0 and "http-tokens" in refused.stderr, refused.stderr
    assert os.listdir(elsewhere) == []
    assert api_with(root_lpd, new_a).request("GET", "/jobs")[0] == 401  # not read through the link either
    assert api_with(root_lpd, owner_token(root_lpd)).request("GET", "/jobs")[0] == 200


def test_dashboard_says_when_lpd_serves_no_http():
    d = Lpd()
    d.start()
    try:
        result = d.lpctl("dashboard", check=False)
        assert result.returncode != 0
        assert "--http" in result.stderr and "unavailable" in result.stderr, result.stderr
        help_text = d.lpctl("dashboard", "--help").stdout
        assert "--rotate" in help_text and "own" in help_text
    finally:
        d.stop()
        shutil.rmtree(d.root, ignore_errors=True)


# -- h16srv: attack findings 3, 4 and 12 ----------------------------------------------------


@needs_root
def test_a_deleted_users_token_does_not_act_for_the_next_user_of_its_uid(root_lpd, users):
    gone, successor = "lpdtok_g", "lpdtok_s"
    for name in (gone, successor):
        remove_user(name)
    try:
        user_admin(["useradd", "-m", "-s", "/bin/sh", "-G", GROUP, gone], check=True)
        g = pwd.getpwnam(gone)
        old = dashboard(g, root_lpd)["token"]
        api = api_with(root_lpd, old)
        assert api.request("GET", "/jobs")[0] == 200
        token_file = os.path.join(root_lpd.state_dir, "http-tokens", str(g.pw_uid))
        with open(token_file) as f:
            assert json.loads(f.read()) == {"token": old, "user": gone, "home": g.pw_dir}

        async def scenario():
            async with api.ws() as ws:
                await opened(ws)
                # userdel, and the uid given to the next user, while the WebSocket is open.
                await call(remove_user, gone)
                await call(user_admin, ["useradd", "-m", "-s", "/bin/sh", "-G", GROUP, "-u", str(g.pw_uid),
                                        successor], check=True)
                status = (await call(api.request, "GET", "/jobs"))[0]
                with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(ws.recv(), WAIT)
                return status, closed.value

        status, closed = asyncio.run(scenario())
        assert status == 401
        assert closed.rcvd is not None and (closed.rcvd.code, closed.rcvd.reason) == (1008, "token's user is gone")
        assert not os.path.exists(token_file)
        assert f"made for user {gone}" in root_lpd.log_text()
        s = pwd.getpwnam(successor)
        assert s.pw_uid == g.pw_uid
        mine = dashboard(s, root_lpd)
        assert mine["token"] != old
        assert api_with(root_lpd, mine["token"]).request("GET", "/jobs")[0] == 200
        assert api.request("GET", "/jobs")[0] == 401
        with open(token_file) as f:
            assert json.loads(f.read())["user"] == successor
        # A restart does not bring the old token back either.
        root_lpd.stop()
        start_root_lpd(root_lpd)
        assert api_with(root_lpd, old).request("GET", "/jobs")[0] == 401  # a new port: a new Api
        assert api_with(root_lpd, mine["token"]).request("GET", "/jobs")[0] == 200
    finally:
        for name in (gone, successor):
            remove_user(name)


@needs_root
def test_a_token_file_of_the_first_format_is_refused_and_replaced(root_lpd, users):
    a = users["a"]
    # What an lpd before h16srv wrote: the token alone, bound to no one.
    root_lpd.stop()
    tokens_dir = os.path.join(root_lpd.state_dir, "http-tokens")
    os.makedirs(tokens_dir, mode=0o700, exist_ok=True)
    path = os.path.join(tokens_dir, str(a.pw_uid))
    unbound = "ab" * 32
    with open(path, "w") as f:
        f.write(unbound + "\n")
    os.chmod(path, 0o600)
    start_root_lpd(root_lpd)
    assert api_with(root_lpd, unbound).request("GET", "/jobs")[0] == 401
    assert not os.path.exists(path)
    assert "bound to no user" in root_lpd.log_text()
    mine = dashboard(a, root_lpd)["token"]
    assert mine != unbound and api_with(root_lpd, mine).request("GET", "/jobs")[0] == 200


@needs_root
def test_one_users_websockets_leave_room_for_root_and_other_users(root_lpd, users):
    a, b = users["a"], users["b"]
    api_a = api_with(root_lpd, dashboard(a, root_lpd)["token"])
    api_b = api_with(root_lpd, dashboard(b, root_lpd)["token"])
    api_root = api_with(root_lpd, owner_token(root_lpd))
    share = 32  # ConnectionLimits::kMaxAuthenticatedPerUid: a quarter of 128

    async def scenario():
        held, refused = [], []
        try:
            for _ in range(share + 8):
                try:
                    ws = await api_b.ws()
                except websockets.exceptions.InvalidStatusCode as e:
                    refused.append(e.status_code)
                    continue
                held.append(ws)
                await opened(ws)
            # b holds its share: root's and a's requests and WebSockets still go through.
            root_status = (await call(api_root.request, "GET", "/jobs"))[0]
            a_status = (await call(api_a.request, "GET", "/jobs"))[0]
            async with api_a.ws() as ws_a:
                await opened(ws_a)
            async with api_root.ws() as ws_root:
                await opened(ws_root)
            b_reply = await call(api_b.request, "GET", "/jobs")
            return len(held), refused, root_status, a_status, b_reply
        finally:
            for ws in held:
                await ws.close()

    held, refused, root_status, a_status, b_reply = asyncio.run(scenario())
    assert held == share
    assert refused == [503] * 8
    assert (root_status, a_status) == (200, 200)
    status, headers, body = b_reply
    assert status == 503 and f"holds {share} connections" in body["error"], body
    assert headers["Retry-After"] == "10"
    assert "refused" in root_lpd.log_text() and "with a valid token" in root_lpd.log_text()
    assert root_lpd.ping()


@needs_root
def test_a_user_kept_out_of_the_socket_is_told_lpd_runs_and_which_group_lets_them_in(root_lpd):
    name = "lpdtok_o"
    remove_user(name)
    try:
        user_admin(["useradd", "-m", "-s", "/bin/sh", name], check=True)  # not in GROUP
        outsider = pwd.getpwnam(name)
        gid = grp.getgrnam(GROUP).gr_gid
        for args in (("dashboard",), ("status",)):
            result = as_user(outsider, root_lpd, *args)
            assert result.returncode == 2, result.stderr
            assert f"lpd is running on {root_lpd.socket}, but you may not connect to it" in result.stderr, \
                result.stderr
            assert f"group {GROUP} (gid {gid})" in result.stderr, result.stderr
            assert "Start it with" not in result.stderr
    finally:
        remove_user(name)


def test_run_end_from_a_connection_in_no_run_changes_nothing_and_says_so():
    d = Lpd()
    d.start()
    try:
        shim = RawClient(d.socket)
        shim.hello(role="shim")
        run_id = shim.request("run.register", argv=["pytest"], cwd="/", hostname="h")["result"]["run_id"]
        other = RawClient(d.socket)
        other.hello()
        reply = other.request("run.end", run_id=run_id)
        assert reply["ok"] and reply["result"] == {"ended": False}, reply
        runs = {r["run_id"]: r for r in other.request("run.list")["result"]["runs"]}
        assert runs[run_id]["status"] == "active", runs
        assert shim.request("run.end")["result"] == {"ended": True}
        shim.close()
        other.close()
    finally:
        d.stop()
        shutil.rmtree(d.root, ignore_errors=True)


def test_lpd_start_help_tells_each_user_to_ask_lpctl_dashboard_for_a_token():
    result = subprocess.run([LPD_BIN, "start", "--help"], capture_output=True, text=True, timeout=WAIT)
    help_text = " ".join(result.stdout.split())
    assert "--http" in help_text and "`lpctl dashboard`" in help_text, help_text


@needs_root
def test_a_token_acts_only_while_its_user_may_connect_to_the_socket(root_lpd, users):
    """One permission model: removed from the socket's group, a user's token is
    refused at once (the socket refuses them too), and works again once they
    are back; a token cannot renew itself over HTTP."""
    b = users["b"]
    token = dashboard(b, root_lpd)["token"]
    api = api_with(root_lpd, token)
    assert api.request("GET", "/jobs")[0] == 200
    # Over HTTP, http.token is refused: tokens are given on the socket only.
    status, _, body = api.request("POST", "/api/op/http.token", {"rotate": True})
    assert status == 403 and "Unix socket" in body["error"]["message"], body
    user_admin(["gpasswd", "-d", b.pw_name, GROUP], check=True)
    try:
        assert "may not connect" in as_user(b, root_lpd, "status").stderr
        status, _, body = api.request("GET", "/jobs")
        assert status == 401, body
        status, _, body = api.request("POST", "/jobs", {"args": ["--version"], "id": "kicked", "cwd": "/tmp"})
        assert status == 401, body
        assert "may not connect to lpd's socket" in root_lpd.log_text()
    finally:
        user_admin(["gpasswd", "-a", b.pw_name, GROUP], check=True)
    assert api.request("GET", "/jobs")[0] == 200
    assert root_lpd.ping()
