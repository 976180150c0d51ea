"""Issue 7: the pytest shim produces the messages in
protocol/examples/shim_messages.json, the same file the native shim's unit
test (tests/native/shim_messages_test.cpp) checks. Plain pytest, no daemon:
a fake peer on a socketpair-like Unix socket answers the requests."""

import json
import os
import sys
import threading

import pytest

from lpd_harness import SHIM_PYTHONPATH, SOURCE_DIR, answer_as_lpd, fake_lpd_listener

sys.path[:0] = SHIM_PYTHONPATH.split(os.pathsep)

from lpd_pytest import messages  # noqa: E402
from lpd_pytest.client import Connection  # noqa: E402
from lpd_pytest.link import LpdLink  # noqa: E402
from lpd_pytest.live_pause import Pauses  # noqa: E402

EXAMPLES_PATH = os.path.join(SOURCE_DIR, "protocol", "examples", "shim_messages.json")


def load_examples():
    with open(EXAMPLES_PATH) as f:
        return json.load(f)


def key_of(message):
    return message["op"] + (":" + message["kind"] if "kind" in message else "")


EXAMPLES = {key_of(m): m for m in load_examples()}


def build_like(e):
    """Builds, with lpd_pytest's helpers, the message `e` shows, from its own values."""
    op = e["op"]
    if op == "hello":
        return messages.request(e["id"], op, messages.hello_fields(e["pid"], e["client"]))
    if op == "run.register":
        return messages.request(e["id"], op, messages.run_register_fields(
            e["argv"], e["cwd"], e["hostname"], e.get("run_id"), e.get("worker_id")))
    if op == "run.end":
        return messages.request(e["id"], op)
    if op == "test.start":
        return messages.test_start(e["nodeid"])
    if op == "test.finish":
        return messages.test_finish(e["nodeid"], e["outcome"], e["duration"], e["message"], phase=e["phase"])
    if op == "crash.notice":
        return messages.crash_notice(e["signal"], e["nodeid"])
    if op == "pause.request":
        return messages.request(e["id"], op, messages.pause_request_fields(
            e["pause_id"], e["run_id"], e["kind"], e["nodeid"], e["timeout"], task=e["task"],
            original_failure=e["original_failure"], worker_id=e["worker_id"], hostname=e["hostname"], cwd=e["cwd"]))
    raise AssertionError(f"no Python builder for {op}")


def json_type(value):
    # bool before int: in Python a bool is an int, in JSON it is not.
    for name, kind in (("bool", bool), ("int", int), ("float", float), ("str", str), ("list", list),
                       ("object", dict), ("null", type(None))):
        if isinstance(value, kind):
            return name
    raise AssertionError(f"not a JSON value: {value!r}")


def assert_same_shape(actual, expected, where="message"):
    """Same keys, and the same JSON type for every value."""
    assert json_type(actual) == json_type(expected), f"{where}: {actual!r} vs {expected!r}"
    if isinstance(expected, dict):
        assert sorted(actual) == sorted(expected), f"{where}: keys {sorted(actual)} vs {sorted(expected)}"
        for key in expected:
            assert_same_shape(actual[key], expected[key], f"{where}.{key}")
    if isinstance(expected, list) and expected and actual:
        assert_same_shape(actual[0], expected[0], f"{where}[0]")


def wire(message):
    """What goes on the socket and what the daemon parses back."""
    return json.loads(json.dumps(message, separators=(",", ":")))


def test_examples_cover_every_shim_message():
    assert sorted(EXAMPLES) == sorted(["hello", "run.register", "test.start", "test.finish", "crash.notice",
                                       "pause.request:checkpoint", "pause.request:failure", "run.end"])


@pytest.mark.parametrize("key", sorted(EXAMPLES))
def test_helpers_build_each_example_exactly(key):
    example = EXAMPLES[key]
    built = wire(build_like(example))
    assert_same_shape(built, example)
    assert built == example


class FakeDaemon:
    """Accepts one connection, records every line and answers requests the
    way lpd does, so the real Shim and Connection code paths can run."""

    def __init__(self, failure_reason="known flaky"):
        self.dir, self.path, self.listener = fake_lpd_listener("fake.sock", 1)
        self.lines = []
        self.failure_reason = failure_reason
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _result_for(self, msg):
        op = msg["op"]
        if op == "hello":
            return {"protocol": 1, "lpd_version": "fake"}
        if op == "run.register":
            return {"run_id": msg.get("run_id") or "fake-run", "worker_id": "controller", "new": True}
        if op == "pause.request" and msg["kind"] == "checkpoint":
            return {"status": "resumed", "result": False, "reason": "too slow", "pause_id": msg["pause_id"]}
        if op == "pause.request":
            return {"status": "resumed", "failure_reason": self.failure_reason, "pause_id": msg["pause_id"]}
        return {"ended": True}

    def _serve(self):
        conn, _ = self.listener.accept()
        answer_as_lpd(conn, self._result_for, self.lines.append)

    def close(self):
        self.listener.close()
        self.thread.join(timeout=10)
        os.unlink(self.path)
        os.rmdir(self.dir)


def test_the_plugin_code_paths_send_the_example_shapes():
    daemon = FakeDaemon()
    shim = LpdLink(daemon.path, "20261123-185623-c82dc8", "gw0")
    pauses = Pauses(shim)
    try:
        shim.connect()
        shim.current_nodeid = "CheckpointTest.AsksAHuman"
        decision = pauses.checkpoint(task="approve the output", timeout=120.0)
        assert (decision.result, decision.reason) == (False, "too slow")
        outcome = pauses.pause("failure", "Sample.Fails", 300.0, original_failure="6 * 7 != 41")
        assert outcome["failure_reason"] == "known flaky"
        # One-way messages go out through Connection.notify.
        for example_key in ("test.start", "test.finish", "crash.notice"):
            fields = build_like(EXAMPLES[example_key])
            op = fields.pop("op")
            shim.conn.notify(op, **fields)
        shim.close(clean=True)
    finally:
        daemon.close()
    sent = daemon.lines
    assert [key_of(m) for m in sent] == ["hello", "run.register", "pause.request:checkpoint",
                                         "pause.request:failure", "test.start", "test.finish", "crash.notice",
                                         "run.end"]
    for message in sent:
        assert_same_shape(message, EXAMPLES[key_of(message)], key_of(message))
    assert sent[0]["client"] == "lpd_pytest" and sent[0]["role"] == "shim"


def test_connection_request_serialises_like_the_helpers():
    """Connection.request adds id and op to the fields exactly as messages.request does."""
    daemon = FakeDaemon()
    try:
        conn = Connection(daemon.path, role="shim", client="lpd_shim")
        conn.request("run.end")
        conn.close()
    finally:
        daemon.close()
    hello, end = daemon.lines
    assert hello == messages.request(1, "hello", messages.hello_fields(os.getpid(), "lpd_shim"))
    assert end == EXAMPLES["run.end"] | {"id": 2}
