"""The connection layer (issue 13): end of stream from a peer means "no more
requests", never "discard the replies"; --json output reaches a pipe line
by line. Every wait is on a socket or pipe, with a generous timeout only as
a guard against a hang."""

import json
import os
import select
import shutil
import socket
import subprocess

import pytest

from lpd_harness import LPCTL_BIN, RawClient

HANG_GUARD = 30  # seconds; a passing test never comes near it


def request_line(msg_id, op, **fields):
    return json.dumps(dict(fields, id=msg_id, op=op)) + "\n"


def read_to_end(sock, timeout=HANG_GUARD):
    """Every message until lpd closes the connection."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    assert data.endswith(b"\n") or not data, f"a partial line before the end: {data[-200:]!r}"
    return [json.loads(line) for line in data.split(b"\n") if line]


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed (scripts/install-deps.sh)")
def test_socat_pipe_gets_every_reply(lpd):
    # The protocol README's own way to talk to lpd. socat shuts its sending
    # side at the end of its input and prints what comes back until lpd
    # closes; -t only stretches how long it would wait (default 0.5 s), so
    # that a loaded machine cannot cut it short.
    script = request_line(1, "hello", role="cli", protocol=1) + request_line(2, "ping")
    result = subprocess.run(["socat", "-t", str(HANG_GUARD), "-", "UNIX-CONNECT:" + lpd.socket], input=script,
                            capture_output=True, text=True, timeout=HANG_GUARD + 30)
    assert result.returncode == 0, result.stderr
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in replies] == [1, 2], result.stdout
    assert replies[0]["ok"] and replies[1] == {"id": 2, "ok": True, "result": {"pong": True}}


def test_many_requests_then_shutdown_write_get_every_reply(lpd):
    count = 2000
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(HANG_GUARD)
    sock.connect(lpd.socket)
    script = request_line(1, "hello", role="cli", protocol=1)
    script += "".join(request_line(i, "ping") for i in range(2, count + 2))
    script += request_line(count + 2, "status")
    sock.sendall(script.encode())
    sock.shutdown(socket.SHUT_WR)
    replies = read_to_end(sock)
    sock.close()
    assert [r["id"] for r in replies] == list(range(1, count + 3))
    assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:3]
    assert replies[-1]["result"]["connections"]["open"] >= 1


def test_replies_bigger_than_the_socket_buffers_survive_a_half_close(lpd):
    # Enough replies that lpd must queue them and pause reading (the peer
    # reads only after its half-close): the end of stream then waits behind
    # the paused requests and is seen only after they were answered.
    count = 400
    run_ids = []
    controller = lpd.client()
    for i in range(20):
        reply = controller.request("run.register", run_id=f"transport-{i}", argv=["x" * 2000], cwd="/",
                                   hostname="h")
        assert reply["ok"], reply
        run_ids.append(reply["result"]["run_id"])
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(HANG_GUARD)
    sock.connect(lpd.socket)
    script = request_line(1, "hello", role="cli", protocol=1)
    script += "".join(request_line(i, "run.list") for i in range(2, count + 2))
    sock.sendall(script.encode())
    sock.shutdown(socket.SHUT_WR)
    replies = read_to_end(sock)
    sock.close()
    controller.close()
    assert [r["id"] for r in replies] == list(range(1, count + 2))
    assert all(r["ok"] for r in replies[1:])
    assert sorted(run["run_id"] for run in replies[-1]["result"]["runs"]) == sorted(run_ids)


def test_a_deferred_reply_still_comes_after_a_half_close(lpd):
    controller = lpd.client()
    reply = controller.request("run.register", run_id="half-close-watch", argv=["pytest"], cwd="/", hostname="h")
    assert reply["ok"], reply

    watcher = RawClient(lpd.socket, timeout=HANG_GUARD)
    watcher.hello()
    # pause.watch waits (no pause is pending); the ping after it is answered
    # at once, and its reply proves lpd read the watch before the end.
    watcher.send_raw(request_line(2, "pause.watch", run_id="half-close-watch") + request_line(3, "ping"))
    watcher.sock.shutdown(socket.SHUT_WR)
    pong = watcher.read_message(timeout=HANG_GUARD)
    assert pong == {"id": 3, "ok": True, "result": {"pong": True}}

    # The run ends (its controller leaves): the watch is answered, to the
    # half-closed peer, which then sees the end of the stream.
    controller.close()
    answer = watcher.read_message(timeout=HANG_GUARD)
    assert answer is not None, "lpd closed the half-closed connection before the owed reply"
    assert answer["id"] == 2 and not answer["ok"] and answer["error"]["code"] == "conflict", answer
    assert watcher.read_message(timeout=HANG_GUARD) is None
    watcher.close()


class PipeLines:
    """Lines from a pipe, each waited for with select (never a sleep)."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""

    def next(self, timeout=HANG_GUARD):
        while b"\n" not in self.buf:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            assert ready, f"no line on the pipe within {timeout} s (buffered: {self.buf[:200]!r})"
            chunk = os.read(self.fd, 65536)
            assert chunk, f"the pipe closed; buffered: {self.buf!r}"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


def test_json_events_follow_into_a_pipe_delivers_each_event_as_it_happens(lpd):
    controller = lpd.client()
    assert controller.request("run.register", run_id="pipe-0", argv=["pytest"], cwd="/", hostname="h")["ok"]
    follower = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "--json", "events", "--follow",
                                 "--type", "run.started"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=lpd.env())
    try:
        lines = PipeLines(follower.stdout.fileno())
        # The first comes from the replay of history, the rest live; each
        # must be on the pipe before the next is caused. A buffered lpctl
        # would hold them all (a few hundred bytes) and this would hang.
        first = lines.next()
        assert first["event"] == "run.started" and first["data"]["run_id"] == "pipe-0", first
        runs = [controller]
        for i in range(1, 6):
            client = lpd.client()
            assert client.request("run.register", run_id=f"pipe-{i}", argv=["pytest"], cwd="/", hostname="h")["ok"]
            runs.append(client)
            line = lines.next()
            assert line["event"] == "run.started" and line["data"]["run_id"] == f"pipe-{i}", line
        for client in runs:
            client.close()
    finally:
        follower.kill()
        follower.wait(timeout=HANG_GUARD)
        follower.stdout.close()
        follower.stderr.close()
