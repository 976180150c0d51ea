"""issue 16 (h16hard): lpd's HTTP and WebSocket server against hostile or
careless clients: JSON nested 90000 deep, one local user holding many slow
connections, WebSocket readers that do not read, lpd stopping under its
clients; and relay-run fidelity (--session-id, returncode -N).

A real lpd runs with `--http 127.0.0.1:0`. Every wait is an event (an HTTP
reply, a WebSocket frame, a socket read or EOF); timeouts only bound how
long a failure takes to show."""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

websockets = pytest.importorskip("websockets")

from lpd_harness import Lpd, RawClient, short_tempdir, throwaway_users, write_tests  # noqa: E402

from http_harness import WAIT, Api, api, http_lpd, job_frame, next_frame  # noqa: E402,F401  (fixtures)


@pytest.fixture
def suite_dir():
    path = short_tempdir()
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def deep(depth):
    return '{"a":' * depth + "1" + "}" * depth


# -- 1: nesting ----------------------------------------------------------------

def test_deeply_nested_json_is_a_400_over_http_and_an_error_over_ws_and_lpd_lives(http_lpd, api):
    status, _, body = api.request("POST", "/api/op/run.list", data=deep(90000).encode())
    assert status == 400, body
    assert body["ok"] is False and "64 levels" in body["error"]["message"]
    status, _, body = api.request("POST", "/jobs", data=('{"args": ' + "[" * 5000 + "]" * 5000 + "}").encode())
    assert status == 400 and "64 levels" in body["detail"], body
    # A reasonable body still works on the same lpd.
    status, _, body = api.request("POST", "/api/op/run.list", {})
    assert status == 200 and body["ok"] is True, body

    async def over_ws():
        async with api.ws() as ws:
            await ws.send('{"id": 7, "op": "run.list", "fields": ' + deep(150000) + "}")
            reply = await next_frame(ws, lambda f: f["type"] == "reply")
            await ws.send(json.dumps({"id": 8, "op": "ping"}))
            pong = await next_frame(ws, lambda f: f["type"] == "reply")
            return reply, pong

    reply, pong = asyncio.run(over_ws())
    assert reply["payload"]["ok"] is False and "64 levels" in reply["payload"]["error"]["message"], reply
    assert pong["payload"] == {"id": 8, "ok": True, "result": {"pong": True}}
    assert http_lpd.proc.poll() is None and http_lpd.ping()


# -- 2: one local user cannot keep HTTP from the others --------------------------

HOLDER = r"""
import os, select, socket, sys
host, port, count, wait = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
conns = []
for _ in range(count):
    s = socket.create_connection((host, port), timeout=wait)
    try:
        s.sendall(b"GET /jobs HTTP/1.1\r\nHost: x\r\n")  # a header that never ends
    except OSError:
        pass  # already closed by lpd
    conns.append(s)
open_ = set(conns)
def closed_by_lpd(limit_open):
    # Wait (select, no sleep) until at most limit_open are still open.
    while len(open_) > limit_open:
        ready, _, _ = select.select(list(open_), [], [], wait)
        if not ready:
            return False
        for s in ready:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                open_.discard(s)
    return True
ok = closed_by_lpd(16)
print("held", len(open_), "refused", count - len(open_), flush=True)
sys.stdin.readline()  # the test made its own requests: now wait for the header timeout
print("timed_out", closed_by_lpd(0), flush=True)
"""


@pytest.fixture(scope="module")
def other_user():
    with throwaway_users({"u": "lpdh16hold"}, "lpdh16g") as users:
        yield users["u"]


def test_a_local_user_holding_slow_connections_does_not_keep_the_owner_out(http_lpd, api, other_user):
    script = os.path.join(short_tempdir(), "holder.py")
    os.chmod(os.path.dirname(script), 0o755)
    with open(script, "w") as f:
        f.write(HOLDER)
    os.chmod(script, 0o644)
    log_before = http_lpd.log_text().count("new connection(s)")

    def as_user():
        os.setgroups([])
        os.setgid(other_user.pw_gid)
        os.setuid(other_user.pw_uid)

    holder = subprocess.Popen([sys.executable, script, api.host, str(api.port), "140", str(WAIT)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=as_user)
    try:
        first = holder.stdout.readline().split()
        assert first[:1] == ["held"], first
        held, refused = int(first[1]), int(first[3])
        assert held == 16 and refused == 124, first  # 16 unauthenticated connections per uid
        # The owner's authenticated requests are served meanwhile, on new connections.
        for _ in range(20):
            status, _, body = api.request("GET", "/jobs")
            assert status == 200 and body == [], body
        # One warning line for the burst, not one per refused connection.
        lines = [l for l in http_lpd.log_text().splitlines() if "new connection(s)" in l][log_before:]
        assert 1 <= len(lines) <= 3, lines
        assert "uid " + str(other_user.pw_uid) in lines[0]
        # The held connections' headers never complete: lpd lets them go.
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().split() == ["timed_out", "True"]
    finally:
        holder.kill()
        holder.wait()
    assert http_lpd.ping()


# -- 3 (part): lpd stopping under its clients -----------------------------------

def test_websocket_clients_get_1001_going_away_when_lpd_stops(http_lpd, api):
    async def scenario():
        async with api.ws() as ws:
            await ws.send(json.dumps({"id": 1, "op": "ping"}))
            await next_frame(ws, lambda f: f["type"] == "reply")
            await asyncio.get_running_loop().run_in_executor(None, http_lpd.stop)
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await next_frame(ws, lambda f: False)
            return closed.value

    closed = asyncio.run(scenario())
    assert closed.rcvd is not None and closed.rcvd.code == 1001, closed


BLOCKING_COLLECTION = """
import os, threading
# Collection of this module waits until the test removes the file.
threading.Event().wait() if os.path.exists(os.path.join(os.path.dirname(__file__), "block")) else None

def test_one():
    pass
"""


def test_a_collect_only_post_in_flight_gets_a_503_when_lpd_stops(http_lpd, api, suite_dir):
    write_tests(suite_dir, "test_block.py", BLOCKING_COLLECTION)
    open(os.path.join(suite_dir, "block"), "w").close()
    result = {}

    def post():
        result["reply"] = api.request("POST", "/jobs", {"args": ["test_block.py"], "id": "held",
                                                        "collect_only": True, "cwd": suite_dir})

    async def scenario():
        async with api.ws() as ws:
            poster = threading.Thread(target=post)
            poster.start()
            # The job's run started; its POST waits for a collection that never ends.
            await next_frame(ws, lambda f: f["type"] == "run" and f["payload"].get("event") == "run.started")
            await asyncio.get_running_loop().run_in_executor(None, http_lpd.stop)
            return poster

    poster = asyncio.run(scenario())
    poster.join(WAIT)
    assert not poster.is_alive()
    status, _, body = result["reply"]
    assert status == 503, (status, body)
    assert "lpd is stopping" in body["detail"]


# -- 4: --session-id -------------------------------------------------------------

def test_session_id_names_the_job_and_is_not_passed_to_pytest(http_lpd, api, suite_dir):
    write_tests(suite_dir, "test_one.py", "def test_one():\n    pass\n")

    async def scenario():
        async with api.ws() as ws:
            status, _, job = await asyncio.get_running_loop().run_in_executor(
                None, lambda: api.request("POST", "/jobs", {"args": ["-q --session-id s-9", "test_one.py"],
                                                            "cwd": suite_dir}))
            assert status == 201 and job["id"] == "s-9", job
            return await next_frame(ws, job_frame("s-9", "done"))

    done = asyncio.run(scenario())["payload"]
    assert done["returncode"] == 0, done["text"]
    assert "1 passed" in done["text"] and "unrecognized arguments" not in done["text"]


# -- 5: slow WebSocket readers keep every job message ---------------------------

CHATTY = """
import sys

def test_chatty():
    for _ in range(300):
        sys.stdout.write("x" * 8191 + "\\n")
"""


def test_a_websocket_that_does_not_read_still_gets_every_done_job_message(http_lpd, api, suite_dir):
    write_tests(suite_dir, "test_chatty.py", CHATTY)
    ids = [f"chatty-{i}" for i in range(6)]

    async def scenario():
        async with api.ws() as slow, api.ws() as watcher:
            # `slow` is not read until every job is done (the watcher says when).
            for job_id in ids:
                status, _, job = await asyncio.get_running_loop().run_in_executor(
                    None, lambda j=job_id: api.request("POST", "/jobs", {"args": ["-s", "test_chatty.py"], "id": j,
                                                                         "cwd": suite_dir}))
                assert status == 201, job
            # Jobs end in any order: wait until each one's done came.
            done_ids = set()
            while done_ids != set(ids):
                f = await next_frame(watcher, lambda f: f["type"] == "job" and f["payload"]["state"] == "done")
                done_ids.add(f["payload"]["id"])
            seen = []
            done_ids = set()
            while done_ids != set(ids):
                f = await next_frame(slow, lambda f: f["type"] == "job" and f["payload"]["state"] == "done", seen)
                done_ids.add(f["payload"]["id"])
            return seen

    seen = asyncio.run(scenario())
    done = [f["payload"] for f in seen if f["type"] == "job" and f["payload"]["state"] == "done"]
    assert sorted(p["id"] for p in done) == sorted(ids)
    for p in done:
        assert p["returncode"] == 0
        assert len(p["text"].encode()) <= 64 * 1024 + 512  # the newest 64 KiB and a note
        assert p["text"].startswith("[lpd: the first ")
    notices = [f["payload"] for f in seen if f["type"] == "lpd" and f["payload"].get("notice") == "dropped"]
    for n in notices:
        assert n["what"] == "event frames" and n["count"] >= 1
    status, _, whole = api.request("GET", f"/jobs/{ids[0]}")
    assert status == 200 and len(whole["text"]) > 1000 * 1024  # GET keeps the whole text (up to 1 MiB)


# -- 6: a pytest killed by a signal ---------------------------------------------

def test_a_job_whose_pytest_died_of_a_signal_reports_minus_the_signal(http_lpd, api, suite_dir):
    write_tests(suite_dir, "test_die.py", "import os, signal\n\ndef test_die():\n    os.kill(os.getpid(), signal.SIGKILL)\n")

    async def scenario():
        async with api.ws() as ws:
            status, _, job = await asyncio.get_running_loop().run_in_executor(
                None, lambda: api.request("POST", "/jobs", {"args": ["test_die.py"], "id": "die", "cwd": suite_dir}))
            assert status == 201, job
            return await next_frame(ws, job_frame("die", "done"))

    done = asyncio.run(scenario())["payload"]
    assert done["returncode"] == -9, done
    assert api.request("GET", "/jobs/die")[2]["returncode"] == -9
