"""The event ring (protocol/event_ring.h): a sealed memfd passed to lpd with
ring.attach (SCM_RIGHTS), into which a shim writes one-way messages that lpd
reads on any bytes it receives, once more a window (50 ms) later, and at
close. Real lpd, real socket, the shim's own producer (event_ring.py).
Waits are socket reads with timeouts (and, once, a bounded spin on the
ring's shared read position), never sleeps."""

import fcntl
import json
import os
import shutil
import socket
import struct
import sys
import time

import pytest

from lpd_harness import SHIM_MODULE_DIR, SHIM_PYTHONPATH, EventWaiter, Lpd, exhaust_descriptors, finish, start_pytest

sys.path[:0] = SHIM_PYTHONPATH.split(os.pathsep)

from lpd_pytest import messages  # noqa: E402
from lpd_pytest import reporter as shim_reporting  # noqa: E402
from lpd_pytest.client import Connection  # noqa: E402
from lpd_pytest.event_ring import (  # noqa: E402
    HEADER_BYTES, MAGIC, MAX_RECORD_BYTES, READ_OFFSET, VERSION, WRITE_OFFSET, EventRing)

READ_BY_OFFSET = 32  # protocol/event_ring.h kReadByOffset

pytestmark = pytest.mark.skipif(not (hasattr(os, "memfd_create") and hasattr(fcntl, "F_ADD_SEALS")),
                                reason="needs memfd_create and file seals")

WINDOW_S = 0.050  # Session::kRingWindow
EVENT_TIMEOUT = 30.0
SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
RING_MAP_NAME = "memfd:lpd-event-ring"  # EventRing's memfd, as /proc shows it


# -- helpers ----------------------------------------------------------------
def reply_to(client, msg_id, timeout=10.0):
    """The reply with `msg_id`; fails on anything else that is not an event."""
    while True:
        msg = client.read_message(timeout=timeout)
        assert msg is not None, f"connection closed while waiting for the reply to id {msg_id}"
        if "event" in msg:
            continue
        assert msg.get("id") == msg_id, f"expected the reply to id {msg_id}, got {msg}"
        return msg


def send_with_fd(client, obj, fd):
    data = (json.dumps(obj) + "\n").encode()
    sent = socket.send_fds(client.sock, [data], [fd])
    if sent < len(data):
        client.sock.sendall(data[sent:])


def attach(client, fd, msg_id=900):
    send_with_fd(client, {"id": msg_id, "op": "ring.attach"}, fd)
    return reply_to(client, msg_id)


def error_of(reply):
    assert reply is not None, "connection closed instead of an error reply"
    assert reply["ok"] is False, reply
    return reply["error"]["code"], reply["error"]["message"]


def make_memfd(name, data_size, magic=MAGIC, version=VERSION, write=0, read=0, allow_sealing=True, seals=SEALS):
    flags = os.MFD_CLOEXEC | (os.MFD_ALLOW_SEALING if allow_sealing else 0)
    fd = os.memfd_create(name, flags)
    os.ftruncate(fd, HEADER_BYTES + data_size)
    os.pwrite(fd, struct.pack("<IIQQ", magic, version, write, read), 0)
    if seals:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    return fd


def lpd_fd_targets(lpd):
    fd_dir = f"/proc/{lpd.pid}/fd"
    targets = []
    for name in os.listdir(fd_dir):
        try:
            targets.append(os.readlink(os.path.join(fd_dir, name)))
        except FileNotFoundError:
            pass
    return targets


def lpd_maps(lpd):
    with open(f"/proc/{lpd.pid}/maps") as f:
        return f.read()


def assert_lpd_holds_nothing_of(lpd, memfd_name):
    """lpd neither keeps the descriptor nor a mapping of memfd `memfd_name`."""
    needle = "memfd:" + memfd_name
    assert not [t for t in lpd_fd_targets(lpd) if needle in t], lpd_fd_targets(lpd)
    assert needle not in lpd_maps(lpd)


def assert_refused(lpd, client, reply, needle):
    code, message = error_of(reply)
    assert code == "bad_request", reply
    assert needle in message, reply
    assert reply["id"] == 900
    # The same connection still works, and so does a new one.
    assert client.request("ping")["result"] == {"pong": True}
    assert lpd.ping()


def register(client, run_id=None, worker_id=None):
    fields = messages.run_register_fields(["pytest", "test_event_ring"], os.getcwd(), socket.gethostname(),
                                          run_id, worker_id)
    reply = client.request("run.register", **fields)
    assert reply["ok"], reply
    if run_id:
        assert reply["result"]["run_id"] == run_id
    return reply["result"]["run_id"]


def start_line(nodeid):
    return messages.encode_test_start(messages.quote(nodeid))


def finish_line(nodeid, outcome="passed"):
    return messages.encode_test_finish(messages.quote(nodeid), outcome, 0.5, "", "call")


class RingPeer:
    """A shim-like peer: hello, run.register, an event ring attached, and an
    events subscription to its run's test.* events opened before any record."""

    def __init__(self, lpd, capacity=None, run_id=None, worker_id=None):
        self.lpd = lpd
        self.client = lpd.client()
        self.run_id = register(self.client, run_id, worker_id)
        self.waiter = EventWaiter(lpd, types=["test."], run_id=self.run_id)
        self.ring = EventRing(capacity) if capacity else EventRing()
        before = time.monotonic_ns()
        reply = attach(self.client, self.ring.fileno())
        after = time.monotonic_ns()
        assert reply["ok"], reply
        # lpd's clock at the reply is ours (CLOCK_MONOTONIC): between the two reads.
        assert before <= reply["result"].pop("monotonic_ns") <= after, reply
        assert reply["result"] == {"capacity": self.ring.capacity, "window_ms": 50, "phase_mark": True,
                                   "read_by": True}

    def write(self, line):
        assert self.ring.try_write(line), f"no room in the ring for {line!r}"

    def start(self, nodeid):
        self.write(start_line(nodeid))

    def finish(self, nodeid, outcome="passed"):
        self.write(finish_line(nodeid, outcome))

    def wake(self):
        self.client.send_raw(b"\n")

    def read_position(self):
        return self.ring.positions[READ_OFFSET // 8]

    def read_by(self):
        """lpd's promise: it starts a read of the ring at or after this
        CLOCK_MONOTONIC time (ns); in the past when it promises none."""
        return self.ring.positions[READ_BY_OFFSET // 8]

    def events(self, count, timeout=EVENT_TIMEOUT):
        """The next `count` test.* events of this run, as (type, nodeid, data)."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"only {len(got)} of {count} events within {timeout} s: {got}")
            try:
                msg = self.waiter.client.read_message(timeout=left)
            except socket.timeout:
                raise TimeoutError(f"only {len(got)} of {count} events within {timeout} s: {got}") from None
            assert msg is not None, "lpd closed the event stream"
            if "event" in msg:
                got.append((msg["event"], msg["data"]["nodeid"], msg["data"]))
        return got

    def kinds(self, count, timeout=EVENT_TIMEOUT):
        return [(kind, nodeid) for kind, nodeid, _ in self.events(count, timeout)]

    def ping_same_connection(self):
        """A round trip on the ring's connection: lpd reads the ring before it
        handles the bytes, so after the reply every record written before is
        consumed."""
        reply = self.client.request("ping")
        assert reply["ok"] and reply["result"] == {"pong": True}, reply

    def close(self):
        self.client.close()
        self.waiter.close()
        if self.ring is not None:
            self.ring.close()
            self.ring = None


@pytest.fixture
def ring_peer(lpd):
    peers = []

    def make(capacity=None, run_id=None, worker_id=None):
        peer = RingPeer(lpd, capacity, run_id, worker_id)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        peer.close()


# -- ring.attach refusals -----------------------------------------------------
def test_attach_without_a_descriptor_is_refused(lpd):
    c = lpd.client()
    c.send_raw(json.dumps({"id": 900, "op": "ring.attach"}) + "\n")
    assert_refused(lpd, c, reply_to(c, 900), "SCM_RIGHTS")


def test_descriptor_sent_with_another_message_is_not_kept_for_a_later_attach(lpd):
    c = lpd.client()
    fd = make_memfd("lpd-e2e-stray", 4096)
    try:
        send_with_fd(c, {"id": 5, "op": "ping"}, fd)
        assert reply_to(c, 5)["ok"]
        # lpd drops an unclaimed descriptor once it handled the bytes that
        # came with it; after a second round trip that is certainly done.
        assert c.request("ping")["ok"]
        assert_lpd_holds_nothing_of(lpd, "lpd-e2e-stray")
        c.send_raw(json.dumps({"id": 900, "op": "ring.attach"}) + "\n")
        assert_refused(lpd, c, reply_to(c, 900), "SCM_RIGHTS")
    finally:
        os.close(fd)


def test_attach_with_a_pipe_is_refused(lpd):
    c = lpd.client()
    read_end, write_end = os.pipe()
    try:
        reply = attach(c, read_end)
        assert_refused(lpd, c, reply, "memfd")
        assert "not a file" in reply["error"]["message"]
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize("allow_sealing,seals", [
    (False, 0),                                       # no MFD_ALLOW_SEALING
    (True, 0),                                        # sealable, but not sealed
    (True, fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE),   # sealed, but it could still shrink
], ids=["not-sealable", "no-seals", "no-shrink-seal"])
def test_attach_with_a_memfd_that_could_shrink_is_refused(lpd, allow_sealing, seals):
    c = lpd.client()
    fd = make_memfd("lpd-e2e-unsealed", 4096, allow_sealing=allow_sealing, seals=seals)
    try:
        assert_refused(lpd, c, attach(c, fd), "F_SEAL_SHRINK")
        assert_lpd_holds_nothing_of(lpd, "lpd-e2e-unsealed")
    finally:
        os.close(fd)


@pytest.mark.parametrize("data_size,needle", [
    (1000, "power of two"),
    (2048, "power of two"),              # a power of two, below the minimum
    (4096 + 4096 // 2, "power of two"),
    (0, "smaller than its header"),      # the header alone
])
def test_attach_with_a_wrong_size_is_refused(lpd, data_size, needle):
    c = lpd.client()
    fd = make_memfd("lpd-e2e-size", data_size)
    try:
        assert_refused(lpd, c, attach(c, fd), needle)
        assert_lpd_holds_nothing_of(lpd, "lpd-e2e-size")
    finally:
        os.close(fd)


@pytest.mark.parametrize("header,needle", [
    ({"magic": 0x4C504452}, "LPDR"),
    ({"magic": 0}, "LPDR"),
    ({"version": 7}, "ring version 7"),
    ({"write": 4096 + 1}, "inconsistent"),
    ({"write": 10, "read": 20}, "inconsistent"),
], ids=["magic-reversed", "magic-zero", "version", "write-too-far", "write-behind-read"])
def test_attach_with_a_bad_header_is_refused(lpd, header, needle):
    c = lpd.client()
    fd = make_memfd("lpd-e2e-header", 4096, **header)
    try:
        assert_refused(lpd, c, attach(c, fd), needle)
        assert_lpd_holds_nothing_of(lpd, "lpd-e2e-header")
    finally:
        os.close(fd)


def test_attach_while_lpd_is_out_of_descriptors_is_unavailable_and_the_shim_stays_on_the_socket():
    """The kernel drops a memfd that lpd has no slot for (MSG_CTRUNC): the
    peer did nothing wrong, so the answer is "unavailable" with the reason,
    not bad_request, and the shim goes on on the socket until lpd can take it."""
    lpd = Lpd()
    lpd.start(rlimit_nofile=64)
    flood = []
    fd = make_memfd("lpd-e2e-pressure", 4096)
    raw = shim_conn = reporter = None
    try:
        raw = lpd.client()  # both connected while lpd has descriptors
        shim_conn = Connection(lpd.socket, role="shim", client="lpd_pytest")
        reporter = shim_reporting.TestReporter(link=None)
        flood, refused = exhaust_descriptors(lpd)
        assert "out of file descriptors (EMFILE)" in refused["error"]["message"], refused

        code, message = error_of(attach(raw, fd))
        assert code == "unavailable", message
        assert "memfd" in message and "out of file descriptors (EMFILE)" in message, message
        assert_lpd_holds_nothing_of(lpd, "lpd-e2e-pressure")
        assert raw.request("ping")["result"] == {"pong": True}
        # The shim's own attach: refused the same way, it stays on the socket.
        reporter.channel.attach_ring(shim_conn)
        assert reporter.channel.ring is not None and reporter.channel.ring_conn is None
        assert shim_conn.request("ping") == {"pong": True}

        for client in flood:
            client.close()
        flood = []
        # lpd frees the descriptors as it reads the closes; until then an
        # attach may still find it full. Each try waits for lpd's answer.
        for _ in range(100):
            reply = attach(raw, fd)
            if reply["ok"] or reply["error"]["code"] != "unavailable":
                break
        assert reply["ok"], reply
        assert reply["result"]["capacity"] == 4096
        for _ in range(100):
            reporter.channel.attach_ring(shim_conn)
            if reporter.channel.ring_conn is shim_conn:
                break
        assert reporter.channel.ring_conn is shim_conn
    finally:
        for client in flood:
            client.close()
        if reporter is not None:
            reporter.close()
        for conn in (raw, shim_conn):
            if conn is not None:
                conn.close()
        os.close(fd)
        lpd.stop()
        shutil.rmtree(lpd.root, ignore_errors=True)


# -- a valid ring --------------------------------------------------------------
def test_records_arrive_in_order_after_one_wake_up(ring_peer):
    p = ring_peer()
    nodeids = [f"t.py::test_{i}" for i in range(3)] + ['t.py::test_q["x\\n"]', "t.py::test_ü"]
    expected = []
    for i, nodeid in enumerate(nodeids):
        outcome = "failed" if i == 1 else "passed"
        p.start(nodeid)
        p.finish(nodeid, outcome)
        expected += [("test.start", nodeid, None), ("test.finish", nodeid, outcome)]
    p.wake()
    got = p.events(len(expected))
    assert [(kind, nodeid, data.get("outcome")) for kind, nodeid, data in got] == expected
    assert all(data["worker_id"] == "controller" for _, _, data in got)
    # Everything was consumed, and lpd said so in the shared header.
    p.ping_same_connection()
    assert p.read_position() == p.ring.write_position > 0


def test_a_record_written_after_the_wake_up_is_read_a_window_later(ring_peer):
    """A wake-up is followed by one more read a window (50 ms) later: what the
    shim writes in between arrives with no further byte on the socket."""
    p = ring_peer()
    proven = False
    for attempt in range(50):
        a, b = f"t.py::a{attempt}", f"t.py::b{attempt}"
        p.start(a)
        a_end = p.ring.write_position
        t0 = time.monotonic()
        p.wake()
        # Let lpd's first read take A, so only the follow-up read can find B:
        # spin (no sleep) on the read position lpd publishes, briefly.
        first_read_done = False
        while time.monotonic() - t0 < WINDOW_S / 2:
            if p.read_position() >= a_end:
                first_read_done = True
                break
        p.start(b)
        # lpd got the wake-up after t0 and reads again a window after that;
        # B was written before then only if we were quick enough.
        in_window = time.monotonic() - t0 < WINDOW_S
        if not in_window:
            p.wake()  # this machine stalled us: this attempt proves nothing
        assert p.kinds(2) == [("test.start", a), ("test.start", b)]
        if first_read_done and in_window:
            proven = True
            break
    assert proven, "never managed to write B within lpd's window after its first read"
    p.ping_same_connection()
    assert p.read_position() == p.ring.write_position


def test_while_records_come_lpd_reads_on_its_promise_without_wake_ups(ring_peer):
    """After one wake-up lpd reads the ring every window while it finds
    records, and its read-by word says when the next read starts: each
    record written before that time is read with no byte on the socket.
    Once the records stop, the promise lapses (the next record must wake)."""
    p = ring_peer()
    p.start("t.py::first")
    p.wake()
    assert p.kinds(1) == [("test.start", "t.py::first")]
    promised = 0
    for i in range(20):
        nodeid = f"t.py::kept_{i}"
        p.start(nodeid)
        now = time.monotonic_ns()
        read_by = p.read_by()
        if now >= read_by:
            # This machine stalled us past the promise: lpd may have stopped
            # reading; a wake-up is what a shim sends now.
            p.wake()
        else:
            promised += 1
            # The next tick, plus a fifth of a window after a tick that
            # found records (ring_poller.h: the grace for a late tick).
            assert read_by - now <= WINDOW_S * 1.2 * 1e9, "a promise further than a window and its grace away"
        # Read without a wake-up: within about a window of the promise.
        assert p.kinds(1, timeout=EVENT_TIMEOUT) == [("test.start", nodeid)]
    assert promised > 0, "lpd never promised a read while records came"
    # No more records: after an empty read a window on, the promise is in the past.
    deadline = time.monotonic() + EVENT_TIMEOUT
    while p.read_by() > time.monotonic_ns():
        assert time.monotonic() < deadline, "lpd kept promising reads of an idle ring"
        try:  # a bounded wait on the event stream, where nothing comes
            unexpected = p.waiter.client.read_message(timeout=WINDOW_S)
        except socket.timeout:
            continue
        raise AssertionError(f"nothing was written, yet the event stream gave {unexpected}")
    p.start("t.py::after_the_lapse")
    p.wake()
    assert p.kinds(1) == [("test.start", "t.py::after_the_lapse")]


def test_the_c_writer_wakes_lpd_only_when_no_read_is_promised():
    """The C writer's decision (what the shim sends a wake-up on): a record
    written while the read-by word is more than the margin ahead needs none,
    as long as the lpd that promised it holds its end of the connection;
    one written after it does, once per window; margin 0 is the old rule."""
    ring = EventRing(4096)
    if ring.fast is None:
        ring.close()
        pytest.skip("the C writer _lpd_ring was not built")
    shim_end, lpd_end = socket.socketpair()
    try:
        words = ring.positions
        ring.set_window(WINDOW_S)
        ring.fast.set_read_by_margin(1_000_000)
        ring.set_reader(shim_end.fileno())
        words[READ_BY_OFFSET // 8] = time.monotonic_ns() + 10 * 1_000_000_000
        assert ring.write(start_line("t.py::promised")) == 0
        words[READ_BY_OFFSET // 8] = 0
        assert ring.write(start_line("t.py::lapsed")) == 1
        assert ring.write(start_line("t.py::same_window")) == 0
        # The lpd that promised is gone (killed: the kernel closed its end):
        # its promise is not trusted, so the shim wakes, finds it gone and
        # hands the ring to the next lpd. (The writer looks at the socket
        # at most once a millisecond; a reader just set is looked at first.)
        ring.set_window(WINDOW_S)
        words[READ_BY_OFFSET // 8] = time.monotonic_ns() + 10 * 1_000_000_000
        assert ring.write(start_line("t.py::still_promised")) == 0
        lpd_end.close()
        ring.set_reader(shim_end.fileno())
        assert ring.write(start_line("t.py::promised_by_the_dead")) == 1
        # Attached to no connection (lpd away): no promise is trusted either.
        ring.set_window(WINDOW_S)
        ring.set_reader(-1)
        assert ring.write(start_line("t.py::no_reader")) == 1
        # Without the word (margin 0, an older lpd): the window alone decides.
        ring.set_window(WINDOW_S)  # forgets the last wake-up
        ring.fast.set_read_by_margin(0)
        ring.set_reader(shim_end.fileno())
        words[READ_BY_OFFSET // 8] = time.monotonic_ns() + 10 * 1_000_000_000
        assert ring.write(start_line("t.py::old_rule")) == 1
    finally:
        ring.close()
        shim_end.close()
        lpd_end.close()


def test_a_request_in_the_ring_gets_an_error_on_the_socket(ring_peer):
    p = ring_peer()
    p.write(json.dumps({"id": 77, "op": "ping"}))
    p.start("t.py::after_the_request")
    p.wake()
    reply = p.client.read_message(timeout=EVENT_TIMEOUT)
    assert reply["id"] == 77
    code, message = error_of(reply)
    assert code == "bad_request"
    assert "one-way messages only" in message
    # The ring stays attached: the record after the request was read too.
    assert p.kinds(1) == [("test.start", "t.py::after_the_request")]
    p.ping_same_connection()
    assert p.lpd.ping()


def test_a_bad_record_is_answered_and_the_ring_keeps_working(ring_peer):
    p = ring_peer()
    p.write("this is not json")
    p.write(json.dumps({"op": "test.start"}))  # no nodeid
    p.start("t.py::still_read")
    p.wake()
    first = p.client.read_message(timeout=EVENT_TIMEOUT)
    assert first["id"] is None
    code, message = error_of(first)
    assert code == "bad_request" and "not valid JSON" in message
    second = p.client.read_message(timeout=EVENT_TIMEOUT)
    assert second["id"] is None
    code, message = error_of(second)
    assert code == "bad_request" and "\"nodeid\"" in message
    assert p.kinds(1) == [("test.start", "t.py::still_read")]
    p.ping_same_connection()
    assert p.lpd.ping()


def test_a_record_before_run_register_is_refused_on_the_socket(lpd):
    c = lpd.client()
    ring = EventRing(4096)
    try:
        assert attach(c, ring.fileno())["ok"]
        assert ring.try_write(start_line("t.py::unregistered"))
        c.send_raw(b"\n")
        reply = c.read_message(timeout=EVENT_TIMEOUT)
        assert reply["id"] is None
        assert error_of(reply) == ("bad_request", "test.start before run.register on this connection")
        assert c.request("ping")["ok"]
        assert ring.positions[READ_OFFSET // 8] == ring.write_position
    finally:
        c.close()
        ring.close()
    assert lpd.ping()


def test_a_corrupt_ring_is_detached_and_the_socket_keeps_working(ring_peer):
    p = ring_peer(capacity=4096)
    p.start("t.py::before_the_damage")
    p.wake()
    assert p.kinds(1) == [("test.start", "t.py::before_the_damage")]
    p.ping_same_connection()
    # The producer scribbles a write position far beyond the ring.
    p.ring.positions[WRITE_OFFSET // 8] = p.read_position() + p.ring.capacity + 1000
    p.wake()
    notice = p.client.read_message(timeout=EVENT_TIMEOUT)
    assert notice["id"] is None
    code, message = error_of(notice)
    assert code == "bad_request"
    assert message.startswith("event ring detached")
    assert "send on the socket" in message
    # No second notice for later bytes, and requests still work.
    p.wake()
    p.ping_same_connection()
    # lpd let go of the ring's memory.
    assert RING_MAP_NAME not in lpd_maps(p.lpd)
    # One-way messages on the socket still arrive.
    p.client.send_raw(start_line("t.py::on_the_socket") + "\n")
    assert p.kinds(1) == [("test.start", "t.py::on_the_socket")]
    assert p.lpd.ping()


def test_records_written_before_close_are_read_at_close(ring_peer):
    p = ring_peer()
    expected = []
    for i in range(4):
        nodeid = f"t.py::last_words_{i}"
        p.start(nodeid)
        p.finish(nodeid)
        expected += [("test.start", nodeid), ("test.finish", nodeid)]
    assert p.read_position() == 0
    p.client.close()  # no wake-up: only the read at close can find them
    assert p.kinds(len(expected)) == expected
    # Once lpd answers a new connection it is done with the closed session:
    # the read position is published and the mapping is gone.
    assert p.lpd.ping()
    assert p.read_position() == p.ring.write_position
    assert RING_MAP_NAME not in lpd_maps(p.lpd)


def test_records_wrapping_around_a_small_ring_many_times(ring_peer):
    p = ring_peer(capacity=4096)
    sent = 0
    for batch in range(16):
        expected = []
        for i in range(15):
            nodeid = f"t.py::wrap_{batch}_{i}_" + "x" * ((batch * 15 + i) * 7 % 131)
            p.start(nodeid)
            expected.append(("test.start", nodeid))
        p.wake()
        assert p.kinds(len(expected)) == expected
        sent += len(expected)
    p.ping_same_connection()
    assert p.read_position() == p.ring.write_position > 5 * p.ring.capacity
    assert sent == 240


def write_record_of_size(p, size, tag):
    """A test.start record of exactly `size` ring bytes (length field included)."""
    overhead = 4 + len(start_line(""))
    nodeid = f"t.py::{tag}_"
    nodeid += "p" * (size - overhead - len(nodeid))
    assert overhead + len(nodeid) == size
    p.start(nodeid)
    return nodeid


def advance_to(p, offset_from_end):
    """Fills the ring (consumed as it goes) until the next record starts
    `offset_from_end` bytes before the end of the data."""
    cap = p.ring.capacity
    smallest = 128
    distance = (-offset_from_end - p.ring.write_position) % cap
    if distance < 2 * smallest:
        distance += cap
    parts = -(-distance // (cap // 2))
    sizes = [distance // parts] * parts
    sizes[-1] += distance - sum(sizes)
    for n, size in enumerate(sizes):
        nodeid = write_record_of_size(p, size, f"filler{offset_from_end}_{n}")
        p.wake()
        assert p.kinds(1) == [("test.start", nodeid)]
    assert p.ring.write_position % cap == cap - offset_from_end


@pytest.mark.parametrize("offset_from_end", [1, 2, 3, 4, 5, 64])
def test_a_record_split_at_the_end_of_the_ring(ring_peer, offset_from_end):
    """1-3: the length field itself is split; 4: the payload starts at the
    data's first byte; more: the payload is split."""
    p = ring_peer(capacity=4096)
    advance_to(p, offset_from_end)
    nodeid = f"t.py::split_at_{offset_from_end}_" + "s" * 80
    line = start_line(nodeid).encode()
    p.start(nodeid)
    data = p.ring.memory[HEADER_BYTES:]
    cap = p.ring.capacity
    record = struct.pack("<I", len(line)) + line
    assert bytes(data[cap - offset_from_end:]) + bytes(data[:len(record) - offset_from_end]) == record
    p.start("t.py::after_the_split")
    p.wake()
    assert p.kinds(2) == [("test.start", nodeid), ("test.start", "t.py::after_the_split")]
    p.ping_same_connection()
    assert p.read_position() == p.ring.write_position


def test_a_full_ring_is_emptied_by_a_request(ring_peer):
    """The shim's answer to a full ring: any request makes lpd read the ring
    before answering, so after the reply there is room again."""
    p = ring_peer(capacity=4096)
    written = []
    while True:
        nodeid = f"t.py::fill_{len(written)}_" + "f" * 60
        if not p.ring.try_write(start_line(nodeid)):
            break
        written.append(nodeid)
    assert len(written) >= 30
    assert p.read_position() == 0
    overflow = f"t.py::fill_{len(written)}_" + "f" * 60  # the one that did not fit
    assert not p.ring.try_write(start_line(overflow))
    p.ping_same_connection()
    assert p.read_position() == p.ring.write_position
    assert p.ring.try_write(start_line(overflow))
    p.wake()
    assert p.kinds(len(written) + 1) == [("test.start", n) for n in written + [overflow]]


def test_a_second_connection_resumes_the_same_ring(lpd, ring_peer):
    """The shim re-attaches its ring after a reconnect; the new session reads
    on from the published read position: nothing twice, nothing lost."""
    controller = lpd.client()  # keeps the run going while the worker reconnects
    run_id = register(controller)
    p = ring_peer(run_id=run_id, worker_id="gw0")
    p.start("t.py::first_session")
    p.wake()
    assert p.kinds(1) == [("test.start", "t.py::first_session")]
    p.ping_same_connection()
    p.start("t.py::while_reconnecting")
    p.client.close()  # read at close
    assert p.kinds(1) == [("test.start", "t.py::while_reconnecting")]
    assert lpd.ping()  # lpd is done with the closed session: its read position is published
    assert p.read_position() == p.ring.write_position

    p.client = lpd.client()
    register(p.client, run_id, "gw0")
    reply = attach(p.client, p.ring.fileno())
    assert reply["ok"], reply
    p.start("t.py::second_session")
    p.wake()
    got = p.events(1)
    assert [(kind, nodeid) for kind, nodeid, _ in got] == [("test.start", "t.py::second_session")]
    assert got[0][2]["worker_id"] == "gw0"
    p.ping_same_connection()
    assert p.read_position() == p.ring.write_position
    controller.close()


def test_the_producer_refuses_a_record_over_the_limit():
    ring = EventRing()
    try:
        line = json.dumps({"op": "test.finish", "nodeid": "t.py::big", "message": "m" * MAX_RECORD_BYTES})
        assert not ring.try_write(line)
        assert ring.write_position == 0
    finally:
        ring.close()


def test_a_huge_failure_message_does_not_cost_the_ring(lpd, tmp_path):
    # A failure message over a record's limit once made the shim write a
    # record lpd had to refuse, and every later message was lost with the ring.
    (tmp_path / "test_big.py").write_text(
        "def test_big():\n    raise ValueError('x' * 70000)\n\n"
        "def test_after_1():\n    pass\n\n"
        "def test_after_2():\n    pass\n")
    waiter = EventWaiter(lpd, types=["test."])
    code, out = finish(start_pytest(lpd, tmp_path))
    assert code == 1, out
    failed = waiter.wait("test.finish", nodeid="test_big.py::test_big")
    assert failed["outcome"] == "failed"
    assert failed["message"].startswith("ValueError: xxx")
    assert waiter.wait("test.finish", nodeid="test_big.py::test_after_1")["outcome"] == "passed"
    assert waiter.wait("test.finish", nodeid="test_big.py::test_after_2")["outcome"] == "passed"
    assert "corrupt" not in lpd.log_text()


def test_the_c_writer_is_used_where_it_was_built():
    from lpd_pytest import event_ring
    if not os.path.isdir(SHIM_MODULE_DIR):
        pytest.skip("this build has no C ring writer (a sanitizer build)")
    assert event_ring._lpd_ring is not None
    ring = EventRing()
    try:
        assert ring.fast is not None
    finally:
        ring.close()


def test_the_c_and_python_writers_write_the_same_bytes():
    from lpd_pytest import event_ring
    if event_ring._lpd_ring is None:
        pytest.skip("no C ring writer in this build")
    quoted = messages.quote('t.py::test_x["\\u00e9\n"]')
    duration = 0.000123456789
    lines = [messages.encode_test_start(quoted), messages.encode_test_finish(quoted, "passed", duration),
             messages.encode_test_finish(quoted, "failed", 1.5, "boom", "call")]
    in_c, in_python = EventRing(4096), EventRing(4096)
    try:
        in_python.fast.close()
        in_python.fast = None
        for _ in range(40):  # several laps round the 4 KiB ring, so records wrap
            assert in_c.fast.start(quoted) >= 0
            assert in_c.fast.passed(quoted, duration) >= 0
            assert in_c.fast.write(lines[2]) >= 0
            for line in lines:
                assert in_python.try_write(line)
            for ring in (in_c, in_python):  # play lpd: everything was read
                ring.positions[READ_OFFSET // 8] = ring.write_position
        assert in_c.write_position == in_python.write_position > 4096
        assert bytes(in_c.memory) == bytes(in_python.memory)
    finally:
        in_c.close()
        in_python.close()
