"""Issue 2: every bad input gets a clear error and the daemon keeps serving."""

import json
import os
import socket

import pytest

from lpd_harness import Lpd, RawClient, wait_until_in_directory


def error_of(reply):
    assert reply is not None, "connection closed instead of an error reply"
    assert reply["ok"] is False, reply
    assert reply["error"]["message"], reply
    return reply["error"]["code"]


@pytest.mark.parametrize("line,code,needle", [
    ("this is not json", "bad_request", "not valid JSON"),
    ("{\"id\": 1, \"op\": \"ping\"", "bad_request", "not valid JSON"),
    ("[1, 2, 3]", "bad_request", "must be a JSON object"),
    ("\"just a string\"", "bad_request", "must be a JSON object"),
    ("{\"id\": 1}", "bad_request", "no \"op\""),
    ("{\"id\": 1, \"op\": 42}", "bad_request", "\"op\" must be"),
    ("{\"id\": {\"x\": 1}, \"op\": \"ping\"}", "bad_request", "\"id\" must be"),
    ("{\"id\": 1, \"op\": \"no.such.op\"}", "unknown_op", "no.such.op"),
    ("{\"id\": 1, \"op\": \"hello\", \"protocol\": \"one\"}", "conflict", "already"),
    ("{\"id\": 1, \"ok\": true, \"result\": {}}", "bad_request", "requests and notifications only"),
])
def test_malformed_messages_get_error_codes(lpd, line, code, needle):
    c = lpd.client()
    c.send_raw(line + "\n")
    reply = c.read_message()
    assert error_of(reply) == code
    assert needle in reply["error"]["message"]
    # The same connection still works, and so does a new one.
    assert c.request("ping")["ok"]
    c.close()
    assert lpd.ping()


def test_wrong_field_types_are_bad_requests(lpd):
    c = lpd.client(hello=False)
    reply = c.request("hello", protocol="one")
    assert error_of(reply) == "bad_request"
    assert "\"protocol\" must be an integer" in reply["error"]["message"]
    reply = c.request("hello", protocol=99)
    assert error_of(reply) == "bad_request" and "not supported" in reply["error"]["message"]
    reply = c.request("hello", role=5)
    assert error_of(reply) == "bad_request" and "\"role\"" in reply["error"]["message"]
    assert c.request("hello", protocol=1)["ok"]
    assert lpd.ping()


def test_request_before_hello_is_refused(lpd):
    c = lpd.client(hello=False)
    reply = c.request("status")
    assert error_of(reply) == "bad_request"
    assert "hello" in reply["error"]["message"]
    c.hello()
    assert c.request("status")["ok"]


def test_oversized_line_gets_too_large_then_close(lpd):
    c = lpd.client()
    c.send_raw(b"{\"id\": 1, \"op\": \"ping\", \"pad\": \"" + b"x" * (1024 * 1024 + 10))
    reply = c.read_message()
    assert error_of(reply) == "too_large"
    assert c.closed_by_peer()
    assert lpd.ping()


def test_line_of_exactly_the_limit_is_accepted(lpd):
    c = lpd.client()
    prefix = b"{\"id\": 5, \"op\": \"ping\", \"pad\": \""
    suffix = b"\"}"
    pad = 1024 * 1024 - len(prefix) - len(suffix)
    c.send_raw(prefix + b"x" * pad + suffix + b"\n")
    reply = c.read_message()
    assert reply["ok"] and reply["id"] == 5


def test_client_disconnecting_mid_line(lpd):
    c = lpd.client()
    c.send_raw("{\"id\": 1, \"op\": \"pi")
    c.close()
    assert lpd.ping()
    status = lpd.lpctl_json("status")
    assert status["pid"] == lpd.pid


def test_client_that_never_says_hello_is_closed_after_the_hello_timeout(lpd_unstarted):
    d = lpd_unstarted.start("--hello-timeout", "0.5")
    silent = RawClient(d.socket)
    # Others are served while the silent one sits there.
    assert d.ping()
    reply = silent.read_message(timeout=30)
    assert error_of(reply) == "timeout"
    assert silent.closed_by_peer()
    assert d.ping()


def test_five_hundred_connections_at_once(lpd):
    clients = [RawClient(lpd.socket) for _ in range(500)]
    for i, c in enumerate(clients):
        c.send_raw(json.dumps({"id": 1, "op": "hello", "protocol": 1}) + "\n" +
                   json.dumps({"id": 2, "op": "ping"}) + "\n")
    for c in clients:
        assert c.read_message()["ok"]
        assert c.read_message()["result"] == {"pong": True}
    status = lpd.lpctl_json("status")
    assert status["connections"]["open"] >= 501
    for c in clients:
        c.close()
    assert lpd.ping()


def test_notification_with_unknown_op_is_reported(lpd):
    c = lpd.client()
    c.send_raw(json.dumps({"op": "made.up"}) + "\n")
    reply = c.read_message()
    assert reply["id"] is None
    assert error_of(reply) == "unknown_op"
    assert lpd.ping()


def test_binary_garbage(lpd):
    c = lpd.client()
    c.send_raw(os.urandom(4096).replace(b"\n", b"x") + b"\n")
    assert error_of(c.read_message()) == "bad_request"
    assert lpd.ping()


def test_a_process_closing_many_connections_costs_one_descriptor(lpd):
    """The attack on issue 13: each connection of a live process that
    joined a run (a worker each) and closed without a clean end left lpd
    watching that pid for its exit, one pidfd per connection: one user's
    process ran lpd out of descriptors for everyone. Now one per process."""
    def descriptors():
        return len(os.listdir(f"/proc/{lpd.proc.pid}/fd"))

    def closed_sessions():
        return sum(1 for line in lpd.log_text().splitlines() if line.endswith(": closed"))

    owner = lpd.client()
    run_id = owner.request("run.register", argv=["pytest"], cwd="/src", hostname="ci")["result"]["run_id"]
    before, closed_before = descriptors(), closed_sessions()
    for n in range(300):
        worker = lpd.client()
        assert worker.request("run.register", run_id=run_id, worker_id=f"gw{n}")["ok"]
        worker.close()
    # lpd logs each session's close once it has taken it (and started any watch).
    assert wait_until_in_directory(lpd.root, lambda: closed_sessions() >= closed_before + 300)
    assert descriptors() < before + 20, (before, descriptors())
    assert lpd.ping()
    owner.close()
