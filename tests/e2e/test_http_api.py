"""issue 16 (h16api): lpd's HTTP and WebSocket API, driven as a
pytest-relay-run client drives relay-run: the job API with urllib, the
message stream with Debian's python3-websockets (10.x, asyncio client).

A real lpd runs with `--http 127.0.0.1:0`; its port comes from the status
op. Every wait is an event (an HTTP reply, a WebSocket frame, a socket
read); the timeouts only bound how long a failure takes to show."""

import asyncio
import json
import os
import shutil
import socket
import urllib.error
import urllib.request

import pytest

websockets = pytest.importorskip("websockets")
import websockets.exceptions  # noqa: E402  (a lazy attribute until a client module loads it)

from lpd_harness import Lpd, RawClient, short_tempdir, write_tests  # noqa: E402

from http_harness import (QUICK_SUITE, SLOW_SUITE, WAIT, Api, api, call, http_lpd, job_frame,  # noqa: E402,F401
                          next_frame, relay_states)


@pytest.fixture
def suite_dir():
    path = short_tempdir()
    write_tests(path, "test_quick.py", QUICK_SUITE)
    write_tests(path, "test_slow.py", SLOW_SUITE)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_job_runs_pytest_and_its_states_and_output_come_on_the_websocket(http_lpd, api, suite_dir):
    async def scenario():
        async with api.ws() as ws:
            status, headers, job = await call(api.request, "POST", "/jobs",
                                              {"args": ["-q", "test_quick.py"], "id": "quick", "cwd": suite_dir})
            assert status == 201, job
            assert headers["Location"] == "/jobs/quick"
            assert set(job) == {"id", "state", "returncode", "text"}
            assert job["id"] == "quick" and job["state"] == "in-progress" and job["returncode"] is None
            seen = []
            done = await next_frame(ws, job_frame("quick", "done"), seen)
            # lpd's events of the run come in the same envelope: the failing test's end among them.
            failed = [f for f in seen if f["type"] == "test" and f["payload"].get("event") == "test.finish"
                      and f["payload"].get("nodeid") == "test_quick.py::test_fail"]
            return seen, done, failed

    seen, done, failed = asyncio.run(scenario())
    assert relay_states(seen, "quick") == ["created", "in-progress", "done"]
    payload = done["payload"]
    assert set(payload) == {"id", "state", "returncode", "text"}
    assert payload["returncode"] == 1
    assert "1 failed, 1 passed" in payload["text"]
    assert "hello from test_fail" in payload["text"]  # the process output, as relay-run captures it
    assert failed and failed[0]["payload"]["outcome"] == "failed"
    assert all("seq" in f["payload"] and "event" in f["payload"] for f in seen if f["type"] in ("test", "run"))

    status, _, job = api.request("GET", "/jobs/quick")
    assert status == 200 and job == payload
    status, _, jobs = api.request("GET", "/jobs")
    assert status == 200 and [j["id"] for j in jobs] == ["quick"]
    status, _, body = api.request("DELETE", "/jobs/quick")
    assert status == 204 and body is None
    assert api.request("GET", "/jobs/quick")[0] == 404
    assert http_lpd.ping()  # the Unix socket serves as before


def test_stop_sends_terminating_then_done_and_running_jobs_refuse_delete_and_start(http_lpd, api, suite_dir):
    async def scenario():
        async with api.ws() as ws:
            status, _, job = await call(api.request, "POST", "/jobs",
                                        {"args": ["test_slow.py"], "id": "slow", "cwd": suite_dir})
            assert status == 201 and job["state"] == "in-progress", job
            # Wait until the test itself runs (the shim's test.start), then stop the job.
            await next_frame(ws, lambda f: f["type"] == "test" and f["payload"].get("event") == "test.start"
                             and f["payload"].get("nodeid") == "test_slow.py::test_forever")
            status, _, body = await call(api.request, "DELETE", "/jobs/slow")
            assert status == 409, body
            assert "stop it" in body["error"] and "detail" in body
            assert (await call(api.request, "DELETE", "/jobs"))[0] == 409
            status, _, body = await call(api.request, "POST", "/jobs/slow/actions", {"action": "start"})
            assert status == 409, body
            assert await call(http_lpd.ping)
            seen = []
            status, _, job = await call(api.request, "POST", "/jobs/slow/actions", {"action": "stop"})
            assert status == 200 and job["state"] == "terminating", job
            done = await next_frame(ws, job_frame("slow", "done"), seen)
            return seen, done

    seen, done = asyncio.run(scenario())
    assert relay_states(seen, "slow") == ["terminating", "done"]
    assert done["payload"]["returncode"] not in (None, 0)
    assert "KeyboardInterrupt" in done["payload"]["text"] or "Interrupted" in done["payload"]["text"]
    status, _, body = api.request("POST", "/jobs/slow/actions", {"action": "start"})
    assert status == 409 and "done" in body["error"]  # done is final: create a new job
    status, _, job = api.request("POST", "/jobs/slow/actions", {"action": "stop"})
    assert status == 200 and job["state"] == "done"  # stopping an ended job changes nothing (relay-run)
    assert api.request("DELETE", "/jobs")[0] == 204
    assert api.request("GET", "/jobs")[2] == []


def test_collect_only_answers_collected_and_can_then_be_started(http_lpd, api, suite_dir):
    async def scenario():
        async with api.ws() as ws:
            status, headers, job = await call(api.request, "POST", "/jobs",
                                              {"args": ["test_quick.py"], "id": "coll", "collect_only": True,
                                               "cwd": suite_dir})
            seen = []
            collected = await next_frame(ws, job_frame("coll", "collected"), seen)
            status2, _, started = await call(api.request, "POST", "/jobs/coll/actions", {"action": "start"})
            done = await next_frame(ws, job_frame("coll", "done"), seen)
            return status, headers, job, collected, status2, started, done, seen

    status, headers, job, collected, status2, started, done, seen = asyncio.run(scenario())
    # As relay-run: the reply comes once collection is over, with state collected.
    assert status == 201 and headers["Location"] == "/jobs/coll"
    assert job["state"] == "collected" and job["returncode"] == 0
    assert "test_ok" in job["text"] and "test_fail" in job["text"]
    assert "1 failed" not in job["text"]  # nothing ran
    assert collected["payload"]["state"] == "collected"
    assert relay_states(seen, "coll") == ["collected", "in-progress", "done"]  # no `created` for collect-only
    assert status2 == 200 and started["state"] == "in-progress"
    assert done["payload"]["returncode"] == 1 and "1 failed, 1 passed" in done["payload"]["text"]


def test_without_the_token_or_with_a_wrong_one_everything_but_the_page_is_401(http_lpd, api):
    for token in (None, "0" * 64, api.token[:-1] + ("0" if api.token[-1] != "0" else "1")):
        for method, path, body in (("GET", "/jobs", None), ("POST", "/jobs", {"args": []}),
                                   ("GET", "/jobs/x", None), ("POST", "/api/op/ping", {})):
            status, headers, reply = api.request(method, path, body, token=token)
            assert status == 401, (token, path, reply)
            assert "error" in reply and headers["WWW-Authenticate"].startswith("Bearer")

        async def refused():
            with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
                async with api.ws(token=token):
                    pass
            return e.value.status_code
        assert asyncio.run(refused()) == 401
    assert api.request("GET", "/jobs")[0] == 200
    # The dashboard's files hold no data: served without a token.
    with urllib.request.urlopen(api.url("/"), timeout=WAIT) as res:
        assert res.status == 200 and res.headers["Content-Type"].startswith("text/html")
    assert http_lpd.ping()


def test_no_cookie_is_set_or_read_and_the_query_token_opens_only_the_websocket(http_lpd, api):
    """h16auth: a cookie for 127.0.0.1 goes to every port of it (another
    local user's server would get lpd's token), so lpd sets none and reads
    none; a browser's WebSocket carries the token as ?token=."""
    # The page with ?token=: served, and no cookie.
    with urllib.request.urlopen(api.url(f"/?token={api.token}"), timeout=WAIT) as res:
        assert res.status == 200 and res.headers.get_all("Set-Cookie") is None
    status, headers, body = api.request("POST", "/api/op/ping", {})
    assert status == 200 and body == {"ok": True, "result": {"pong": True}}
    assert headers.get_all("Set-Cookie") is None
    # ?token= opens the WebSocket only: the API wants the header.
    assert api.request("POST", f"/api/op/ping?token={api.token}", {}, token=None)[0] == 401
    assert api.request("GET", f"/jobs?token={api.token}", token=None)[0] == 401
    # The right token in a cookie is no credential ...
    right_cookie = {"Cookie": f"lpd_token={api.token}"}
    assert api.request("GET", "/jobs", token=None, headers=right_cookie)[0] == 401
    # ... and a stale one beside the right header changes nothing (it locked users out).
    status, _, body = api.request("GET", "/jobs", headers={"Cookie": "lpd_token=" + "1" * 64})
    assert status == 200 and body == []

    async def ping_on(url, headers):
        async with websockets.connect(url, extra_headers=headers) as ws:
            await ws.send(json.dumps({"id": 1, "op": "ping"}))
            return await next_frame(ws, lambda f: f["type"] == "reply")

    async def refused_status(url, headers):
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            async with websockets.connect(url, extra_headers=headers):
                pass
        return e.value.status_code

    pong = {"id": 1, "ok": True, "result": {"pong": True}}
    own_page = {"Origin": f"http://{api.address}"}
    assert asyncio.run(ping_on(api.ws_url(f"?token={api.token}"), own_page))["payload"] == pong
    assert asyncio.run(ping_on(api.ws_url(f"?token={api.token}"), {}))["payload"] == pong
    assert asyncio.run(refused_status(api.ws_url(), right_cookie)) == 401
    assert asyncio.run(refused_status(api.ws_url("?token=" + "1" * 64), own_page)) == 401
    # Another site's page (another port of the same host) is refused even with the token.
    host, port = api.address.rsplit(":", 1)
    other_site = {"Origin": f"http://{host}:{int(port) % 65535 + 1}"}
    assert asyncio.run(refused_status(api.ws_url(f"?token={api.token}"), other_site)) == 403
    assert api.request("POST", "/api/op/ping", {}, headers=other_site)[0] == 403
    assert api.request("POST", "/api/op/ping", {}, headers={"Origin": "null"})[0] == 403
    status, _, body = api.request("POST", "/api/op/ping", {}, headers=own_page)
    assert status == 200 and body["ok"] is True
    assert http_lpd.ping()


def test_bearer_is_case_insensitive_and_head_and_unknown_methods_answer_as_http_says(http_lpd, api):
    """h16auth: RFC 7235's scheme names are case-insensitive; HEAD is GET
    without a body (a body desynced the next reply on the connection); a
    method a path does not take is 405 with Allow."""
    for scheme in ("bearer", "BEARER", "BeArEr"):
        status, _, body = api.request("GET", "/jobs", token=None, headers={"Authorization": f"{scheme} {api.token}"})
        assert (status, body) == (200, []), scheme

    # HEAD of the page and of a file: no token needed, GET's headers, no body.
    with urllib.request.urlopen(api.url("/style.css"), timeout=WAIT) as res:
        css = res.read()
    for path in ("/", "/style.css"):
        req = urllib.request.Request(api.url(path), method="HEAD")
        with urllib.request.urlopen(req, timeout=WAIT) as res:
            assert res.status == 200 and res.read() == b""
            if path == "/style.css":
                assert int(res.headers["Content-Length"]) == len(css) and res.headers["Content-Type"].startswith("text/css")
    # HEAD then GET on one kept-alive connection: the second reply is the
    # GET's, right after the HEAD's headers (read until lpd closes).
    raw = raw_http(api.address, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
                                b"GET /style.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, rest = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 "), raw[:300]
    assert rest.startswith(b"HTTP/1.1 200 "), raw[:600]
    get_headers, get_body = rest.split(b"\r\n\r\n", 1)
    assert b"text/css" in get_headers and get_body == css
    # HEAD of the API wants the token like GET, and has no body either.
    assert api.request("HEAD", "/jobs", token=None)[0] == 401
    status, _, body = api.request("HEAD", "/jobs")
    assert status == 200 and body is None

    # Methods a path does not take: 405 and what it takes.
    for method, path, allow in (("FOO", "/", "GET, HEAD"), ("PUT", "/style.css", "GET, HEAD"),
                                ("PUT", "/jobs", "GET, HEAD, POST, DELETE"), ("PATCH", "/jobs/x", "GET, HEAD, DELETE"),
                                ("GET", "/jobs/x/actions", "POST"), ("GET", "/api/op/ping", "POST"),
                                ("OPTIONS", "/api/op/ping", "POST")):
        status, headers, body = api.request(method, path, token=None)
        assert status == 405 and headers["Allow"] == allow, (method, path, status, body)
        assert "error" in body
    assert http_lpd.ping()


def test_bad_json_unknown_ids_and_conflicts_get_relay_runs_statuses(http_lpd, api, suite_dir):
    status, _, body = api.request("POST", "/jobs", data=b'{"args": [')
    assert status == 400 and "JSON" in body["error"] and body["detail"] == body["error"]
    assert api.request("POST", "/jobs", {"args": "-q"})[0] == 400
    assert api.request("POST", "/jobs", {"args": [], "cwd": "relative"})[0] == 400
    assert api.request("POST", "/jobs", {"args": [], "id": "a/b"})[0] == 400
    # pytest would get another argument than the one sent (a C string ends at NUL).
    status, _, body = api.request("POST", "/jobs", {"args": ["a\u0000b"], "cwd": suite_dir})
    assert status == 400 and "NUL" in body["error"], body
    # Args are kept with the job across restarts: 64 KiB at most.
    status, _, body = api.request("POST", "/jobs", {"args": ["x" * 40000, "y" * 40000], "cwd": suite_dir})
    assert status == 400 and "64 KiB" in body["error"], body
    assert api.request("GET", "/jobs")[2] == []  # neither became a job
    status, _, body = api.request("POST", "/jobs", {"args": [], "cwd": "/nonexistent-h16"})
    assert status == 400 and "/nonexistent-h16" in body["error"]
    for method, path, payload in (("GET", "/jobs/nope", None), ("DELETE", "/jobs/nope", None),
                                  ("POST", "/jobs/nope/actions", {"action": "stop"})):
        status, _, body = api.request(method, path, payload)
        assert status == 404 and "nope" in body["error"], (method, path, body)
    status, _, job = api.request("POST", "/jobs", {"args": ["-q", "test_quick.py"], "id": "dup", "cwd": suite_dir})
    assert status == 201, job
    status, _, body = api.request("POST", "/jobs", {"args": [], "id": "dup", "cwd": suite_dir})
    assert status == 409 and "already exists" in body["error"]
    status, _, body = api.request("POST", "/jobs/dup/actions", {"action": "pause"})
    assert status == 400 and "Unsupported action" in body["error"]
    assert api.request("POST", "/jobs/dup/actions", data=b"nope")[0] == 400
    # The generic operations: the dispatcher's errors with their statuses.
    status, _, body = api.request("POST", "/api/op/run.info", {"run_id": "no-such-run"})
    assert status == 404 and body["ok"] is False and body["error"]["code"] == "not_found"
    status, _, body = api.request("POST", "/api/op/no.such.op", {})
    assert status == 404 and body["error"]["code"] == "unknown_op"
    status, _, body = api.request("POST", "/api/op/events.subscribe", {})
    assert status == 400 and "/ws" in body["error"]["message"]
    status, _, body = api.request("POST", "/api/op/run.list", {"all": True})
    assert status == 200 and body["ok"] and any(r["run_id"].startswith("dup-") for r in body["result"]["runs"])
    assert api.request("GET", "/no/such/path")[0] == 404
    assert http_lpd.ping()


def test_websocket_requests_are_protocol_ops_with_replies_in_the_envelope(http_lpd, api):
    async def scenario():
        async with api.ws() as ws:
            await ws.send(json.dumps({"id": 7, "op": "status", "fields": {}}))
            status = await next_frame(ws, lambda f: f["type"] == "reply")
            await ws.send("not json")
            bad = await next_frame(ws, lambda f: f["type"] == "reply")
            await ws.send(json.dumps({"id": "x", "op": "run.info", "fields": {"run_id": "nope"}}))
            missing = await next_frame(ws, lambda f: f["type"] == "reply")
            return status, bad, missing

    status, bad, missing = asyncio.run(scenario())
    assert status["payload"]["id"] == 7 and status["payload"]["ok"] is True
    assert status["payload"]["result"]["http"]["address"] == api.address
    assert bad["payload"]["ok"] is False and bad["payload"]["error"]["code"] == "bad_request"
    assert missing["payload"] == {"id": "x", "ok": False, "error": missing["payload"]["error"]}
    assert missing["payload"]["error"]["code"] == "not_found"


def raw_http(address, data, read=True):
    """Sends `data` on a new connection and reads until lpd closes it (b"" when
    it closed at once); with read=False returns the open socket."""
    host, port = address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=WAIT)
    if data:
        s.sendall(data)
    if not read:
        return s
    reply = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    except ConnectionResetError:
        pass
    s.close()
    return reply


def test_slow_and_garbage_clients_do_not_stop_others_being_served(http_lpd, api):
    # Half a request, and the client stays; a connection that says nothing.
    half = raw_http(api.address, b"GET /jobs HTTP/1.1\r\nHost: x\r\nAuthori", read=False)
    silent = raw_http(api.address, b"", read=False)
    # Junk is answered 400 and closed.
    junk = raw_http(api.address, b"\x16\x03\x01\x02\x00junk junk\r\n\r\n")
    assert junk.startswith(b"HTTP/1.1 400"), junk[:200]
    # Over the limits: headers over 16 KiB, a body over 1 MiB.
    big_header = raw_http(api.address, b"GET /jobs HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    assert big_header.startswith(b"HTTP/1.1 431"), big_header[:200]
    big_body = raw_http(api.address, b"POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + api.token.encode()
                        + b"\r\nContent-Length: 2000000\r\n\r\n" + b"x" * 1000)
    assert big_body.startswith(b"HTTP/1.1 413"), big_body[:200]

    # A WebSocket that never reads: lpd does not wait for it.
    async def others_served_meanwhile():
        lazy = await websockets.connect(api.ws_url(), extra_headers={"Authorization": f"Bearer {api.token}"})
        try:
            async with api.ws() as ws:
                for i in range(20):
                    await ws.send(json.dumps({"id": i, "op": "ping"}))
                    reply = await next_frame(ws, lambda f: f["type"] == "reply")
                    assert reply["payload"]["id"] == i
        finally:
            await lazy.close()

    asyncio.run(others_served_meanwhile())
    for _ in range(10):
        assert api.request("GET", "/jobs")[0] == 200
        assert http_lpd.ping()
    half.close()
    silent.close()
    assert api.request("POST", "/api/op/ping", {})[2] == {"ok": True, "result": {"pong": True}}


def test_http_is_off_unless_asked_and_a_remote_address_needs_the_flag(http_lpd):
    plain = Lpd()
    try:
        plain.start()
        client = plain.client()
        assert client.request("status")["result"]["http"] is None
        client.close()
        assert not os.path.exists(os.path.join(plain.state_dir, "http.token"))
    finally:
        plain.stop()
        shutil.rmtree(plain.root, ignore_errors=True)
    import subprocess
    from lpd_harness import LPD_BIN
    root = short_tempdir()
    try:
        result = subprocess.run([LPD_BIN, "start", "--foreground", "--socket", os.path.join(root, "s.sock"),
                                 "--state-dir", os.path.join(root, "state"), "--http", "0.0.0.0:0"],
                                capture_output=True, text=True, timeout=WAIT)
        assert result.returncode == 64 and "--http-allow-remote" in result.stderr, result
    finally:
        shutil.rmtree(root, ignore_errors=True)
    token = os.path.join(http_lpd.state_dir, "http.token")
    st = os.lstat(token)
    assert oct(st.st_mode & 0o7777) == "0o600" and st.st_uid == os.geteuid()


def test_a_stream_opened_on_the_websocket_pushes_in_the_envelope(http_lpd, api, suite_dir):
    async def scenario():
        async with api.ws() as ws:
            status, _, job = await call(api.request, "POST", "/jobs",
                                        {"args": ["-q", "test_quick.py"], "id": "att", "cwd": suite_dir})
            assert status == 201, job
            seen = []
            await next_frame(ws, job_frame("att", "done"), seen)
            started = [f for f in seen if f["type"] == "run" and f["payload"]["event"] == "run.started"]
            assert len(started) == 1 and started[0]["payload"]["argv"][-1] == "test_quick.py"
            run_id = started[0]["payload"]["run_id"]
            assert run_id.startswith("att-")  # the run is named after its job
            # lpd's own `job` event of that run is not sent: the relay job stands for it.
            assert not [f for f in seen if f["type"] == "job" and f["payload"].get("event") == "job"]
            await ws.send(json.dumps({"id": 5, "op": "run.attach", "fields": {"run_id": run_id}}))
            reply = await next_frame(ws, lambda f: f["type"] == "reply")
            frames = []
            done = await next_frame(ws, lambda f: f["type"] == "run" and f["payload"]["event"] == "run.done", frames)
            return reply, frames, done

    reply, frames, done = asyncio.run(scenario())
    assert reply["payload"]["id"] == 5 and reply["payload"]["ok"] is True, reply
    output = "".join(f["payload"]["data"] for f in frames if f["payload"].get("event") == "run.output")
    assert "1 failed, 1 passed" in output
    assert done["payload"]["returncode"] == 1


def test_args_are_split_as_relay_run_splits_them(http_lpd, api, suite_dir):
    # relay-run passes each element through shlex.split: a quoted -k expression is one argument.
    status, _, job = api.request("POST", "/jobs", {"args": ["-q -k 'test_ok and not test_fail'", "test_quick.py"],
                                                   "collect_only": True, "cwd": suite_dir})
    assert status == 201 and job["state"] == "collected", job
    assert job["returncode"] == 0
    assert "1/2 tests collected (1 deselected)" in job["text"], job["text"]
    status, _, body = api.request("POST", "/jobs", {"args": ["-k 'unclosed"], "cwd": suite_dir})
    assert status == 400 and "closing quotation" in body["error"]
    status, _, job = api.request("POST", "/jobs", {"args": ["--session-id s-77", "--collect-only"],
                                                   "collect_only": True, "cwd": suite_dir})
    assert status == 201 and job["id"] == "s-77"  # relay-run names the job after --session-id


def test_connections_past_the_limit_are_closed_and_the_others_go_on(http_lpd, api):
    host, port = api.address.rsplit(":", 1)
    sockets = []
    answered = refused = 0
    try:
        for _ in range(140):
            s = socket.create_connection((host, int(port)), timeout=WAIT)
            sockets.append(s)
            try:
                s.sendall(b"GET /jobs HTTP/1.1\r\nHost: x\r\n\r\n")
                reply = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                reply = b""
            if reply.startswith(b"HTTP/1.1 401"):
                answered += 1  # kept open (keep-alive): it holds its connection
            else:
                assert reply == b"", reply[:100]
                refused += 1
        assert 100 <= answered <= 128 and refused >= 12, (answered, refused)
        assert http_lpd.ping()  # the Unix socket is not affected
    finally:
        for s in sockets:
            s.close()
    # Once lpd saw them go, new connections are served again. lpd may take a
    # new one before it read all those ends: each try waits for lpd's answer.
    for _ in range(500):
        try:
            reply = raw_http(api.address, b"POST /api/op/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                             b"Authorization: Bearer " + api.token.encode() + b"\r\nContent-Length: 2\r\n\r\n{}")
        except (ConnectionResetError, BrokenPipeError):
            reply = b""
        if reply:
            break
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b'{"ok":true,"result":{"pong":true}}'), reply


def test_a_run_started_with_lpctl_comes_as_relay_shaped_job_frames(http_lpd, api, suite_dir):
    async def scenario():
        async with api.ws() as ws:
            # Once this is answered, the WebSocket's event subscription is live.
            await ws.send(json.dumps({"id": 1, "op": "ping"}))
            await next_frame(ws, lambda f: f["type"] == "reply")
            result = await call(http_lpd.lpctl, "run", "--detach", "--name", "cli", "--",
                                "/usr/bin/python3", "-m", "pytest", "-q", "test_quick.py", env=http_lpd.env(),
                                check=False)
            assert result.returncode == 0, result.stderr
            seen = []
            done = await next_frame(ws, lambda f: f["type"] == "job" and f["payload"].get("state") == "done", seen)
            return seen, done

    # lpctl run --detach runs in the lpd fixture's cwd: point it at the suite.
    cwd = os.getcwd()
    os.chdir(suite_dir)
    try:
        seen, done = asyncio.run(scenario())
    finally:
        os.chdir(cwd)
    payload = done["payload"]
    # Relay-shaped (id, state, returncode, text), plus the event's own keys.
    assert payload["id"].startswith("cli-") and payload["run_id"] == payload["id"]
    assert payload["event"] == "job" and "seq" in payload
    assert payload["returncode"] == 1
    assert [f["payload"]["state"] for f in seen if f["type"] == "job"][-1] == "done"
    assert api.request("GET", "/jobs")[2] == []  # a run of lpctl is no job of the API
