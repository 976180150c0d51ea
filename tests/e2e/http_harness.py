"""The HTTP side of lpd for the e2e tests of issue 16 (test_http_api.py,
test_http_hostile.py): an lpd started with --http on a free loopback port,
and a client of its API with the token (urllib and python3-websockets)."""

import asyncio
import json
import os
import shutil
import urllib.error
import urllib.request

import pytest
import websockets

from lpd_harness import Lpd, RawClient

WAIT = 120  # seconds: an upper bound for a failure to show, never a sleep


@pytest.fixture
def http_lpd():
    """An lpd with --http 127.0.0.1:0, ended afterwards (import it into a test module)."""
    daemon = Lpd()
    # The jobs' pytest is Debian's python3 (lpd passes its own environment on).
    daemon.start("--http", "127.0.0.1:0", env=daemon.env(PATH="/usr/bin:/bin:" + os.environ.get("PATH", "")))
    yield daemon
    try:
        if daemon.proc is not None:
            daemon.kill_helpers()
        daemon.stop()
    finally:
        if not os.environ.get("LPD_E2E_KEEP"):
            shutil.rmtree(daemon.root, ignore_errors=True)


class Api:
    """The HTTP side of one lpd: urllib requests with the token."""

    def __init__(self, lpd):
        self.lpd = lpd
        client = RawClient(lpd.socket)
        client.hello()
        status = client.request("status")["result"]
        client.close()
        assert status["http"] is not None, status
        self.address = status["http"]["address"]
        self.host, port = self.address.rsplit(":", 1)
        self.port = int(port)
        with open(os.path.join(lpd.state_dir, "http.token")) as f:
            self.token = f.read().strip()

    def url(self, path):
        return f"http://{self.address}{path}"

    def request(self, method, path, body=None, token="default", headers=None, data=None):
        """(status, headers, parsed JSON body or None)."""
        h = dict(headers or {})
        if token == "default":
            token = self.token
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url(path), data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=WAIT) as res:
                raw = res.read()
                return res.status, res.headers, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, e.headers, (json.loads(raw) if raw else None)

    def ws_url(self, query=""):
        return f"ws://{self.address}/ws{query}"

    def ws(self, token="default", extra_headers=None):
        headers = dict(extra_headers or {})
        if token == "default":
            token = self.token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return websockets.connect(self.ws_url(), extra_headers=headers, max_size=8 * 1024 * 1024)


@pytest.fixture
def api(http_lpd):
    """An Api for http_lpd (import it into a test module with http_lpd)."""
    return Api(http_lpd)


# -- the suites the HTTP job tests run ------------------------------------------
QUICK_SUITE = """
def test_ok():
    assert True

def test_fail():
    print("hello from test_fail")
    assert 6 * 7 == 41
"""

# A test that runs until it is interrupted: stop (SIGINT) ends it.
SLOW_SUITE = """
import threading

def test_forever():
    threading.Event().wait()
"""


# -- what a relay-run client does on the WebSocket -----------------------------
async def call(function, *args, **kwargs):
    """A blocking urllib call, run beside the WebSocket's reads."""
    return await asyncio.get_running_loop().run_in_executor(None, lambda: function(*args, **kwargs))


async def next_frame(ws, predicate, seen=None):
    """The next frame (a dict) for which predicate holds; frames before it go to `seen`."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert set(frame) == {"type", "payload"}, frame
        if seen is not None:
            seen.append(frame)
        if predicate(frame):
            return frame


def job_frame(job_id, state=None):
    def match(frame):
        p = frame["payload"]
        return frame["type"] == "job" and p.get("id") == job_id and (state is None or p.get("state") == state)
    return match


def relay_states(frames, job_id):
    return [f["payload"]["state"] for f in frames if f["type"] == "job" and f["payload"].get("id") == job_id]
