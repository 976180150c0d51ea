"""Per-test messages for crash attribution: test.start before a test's
setup, test.finish after its teardown, both one-way (no round trip), plus
Python's faulthandler pointed at a connection of its own so a fatal signal
delivers the traceback to lpd.

The one-way messages go into an event ring (event_ring.py) that lpd reads,
with a blank line on the socket at most once per lpd's window to wake it:
a few microseconds per test instead of a wake-up per message."""

import faulthandler
import json
import time

import pytest

from . import event_ring, messages
from .client import Connection, LpdError, LpdUnavailable

# While lpd is unreachable, try to reconnect at most this often (checked on
# the next message, never by a timer or a sleep).
RECONNECT_INTERVAL = 0.5


_perf_counter = time.perf_counter
_quote = messages.quote
_TEST_START_FORMAT = messages.TEST_START_FORMAT
_TEST_PASSED_FORMAT = messages.TEST_PASSED_FORMAT


MAX_MESSAGE_CHARS = 4096


def outcome_of(report):
    """(outcome, phase, message) of a test whose kept report did not pass.
    The message is cut to what lpd keeps (4096 bytes) anyway."""
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)[-1000:]
        return ("failed" if report.when == "call" else "error"), report.when, message[:MAX_MESSAGE_CHARS]
    longrepr = report.longrepr
    message = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
    return "skipped", report.when, message[:MAX_MESSAGE_CHARS]


class TestReporter:
    """Also the pytest plugin (registered as PLUGIN_NAME) whose hooks send
    the per-test messages."""

    PLUGIN_NAME = "lpd_pytest_reporter"

    def __init__(self, shim):
        self.shim = shim
        self.traceback_conn = None
        self.next_reconnect = 0.0
        self.outcome_report = None  # the report that decides a non-passing outcome
        self.started = None
        self.ring = None  # the event ring, once lpd took it
        self.ring_conn = None  # the connection lpd reads the ring for

    # -- connections ----------------------------------------------------
    def attach_traceback(self):
        """Opens the raw traceback connection and points faulthandler at it."""
        try:
            conn = Connection(self.shim.socket_path, role="traceback", client="lpd_pytest")
            conn.request("traceback.attach")
        except (LpdUnavailable, LpdError):
            return
        if self.traceback_conn is not None:
            self.traceback_conn.close()
        self.traceback_conn = conn
        faulthandler.enable(file=conn.fileno(), all_threads=True)

    def _attach_ring(self, conn):
        """Hands the ring to lpd on this connection. The same ring again
        after a reconnect: the new lpd reads on from where the old one
        stopped, so nothing written meanwhile is lost."""
        self.ring_conn = None
        if not event_ring.supported():
            return
        try:
            if self.ring is None:
                self.ring = event_ring.EventRing()
            result = conn.request("ring.attach", pass_fd=self.ring.fileno())
        except (OSError, LpdError, LpdUnavailable):
            return  # an older lpd, or no memfd here: the socket it is
        self.ring_conn = conn
        self.ring.set_window(result.get("window_ms", 10) / 1000.0)

    def _connection(self):
        """The shim's connection, reconnecting (at most every
        RECONNECT_INTERVAL) when lpd went away; None while it is gone."""
        shim = self.shim
        if shim.conn is None:
            now = time.monotonic()
            if now < self.next_reconnect:
                return None
            self.next_reconnect = now + RECONNECT_INTERVAL
            if not shim.try_connect():
                return None
            self.attach_traceback()
        return shim.conn

    def _send(self, line):
        # The path taken for nearly every message: into the attached ring,
        # and a wake-up only when lpd's window has passed.
        conn = self.shim.conn
        if conn is not None and conn is self.ring_conn:
            written = self.ring.write(line)
            if written >= 0:
                self._written(written)
                return
        self._deliver(line, in_ring=False)

    def _written(self, written):
        """After a record went into the ring: wakes lpd when it is due."""
        if written > 0:
            try:
                self.shim.conn.wake()
            except LpdUnavailable:
                self.shim.drop_connection()
                self._deliver(None, in_ring=True)  # reconnect: the re-attached ring brings the record

    def _deliver(self, line, in_ring):
        # A second round after lpd went away (a restart): a send to a closed
        # Unix socket fails at once, so the message is never silently lost,
        # and a restarted lpd hears which test runs before it can crash.
        for _ in range(2):
            conn = self._connection()
            if conn is None:
                return
            try:
                if self.ring_conn is not conn:
                    self._attach_ring(conn)  # a ring re-attached brings what it holds
                if self.ring_conn is conn:
                    in_ring = in_ring or self._write_to_ring(conn, line)
                    if in_ring:
                        conn.wake()  # rare path (a new connection, a full ring): wake at once
                        return
                if line is not None:
                    conn.send_line(line)
                return
            except LpdUnavailable:
                self.shim.drop_connection()

    def _write_to_ring(self, conn, line):
        if self.ring.write(line) >= 0:
            return True
        # lpd is behind (or the message is huge): lpd reads the ring before
        # it answers any request, so one round trip makes room, and anything
        # sent on the socket after it stays in order.
        try:
            conn.request("ping")
        except LpdError:
            pass
        return self.ring.write(line) >= 0

    # -- hooks ------------------------------------------------------------
    # Run around every test of a suite that may have many thousands of tiny
    # ones: kept to a few attribute reads and one ring write each.
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        quoted = _quote(item.nodeid)
        self.outcome_report = None
        self.started = started = _perf_counter()
        # The C writer when the ring is attached to the live connection;
        # otherwise (or when it says no room) the general way.
        fast = self.ring.fast if self.ring is not None and self.shim.conn is self.ring_conn else None
        written = fast.start(quoted) if fast is not None else -1
        if written >= 0:
            self._written(written)
        else:
            self._send(_TEST_START_FORMAT % quoted)
        yield
        duration = _perf_counter() - started
        report = self.outcome_report
        if report is None:
            written = fast.passed(quoted, duration) if fast is not None and self.shim.conn is self.ring_conn else -1
            if written >= 0:
                self._written(written)
            else:
                self._send(_TEST_PASSED_FORMAT % (quoted, duration))
        else:
            outcome, phase, message = outcome_of(report)
            self._send(messages.encode_test_finish(quoted, outcome, duration, message, phase))
        self.outcome_report = None
        self.started = None

    def pytest_runtest_logreport(self, report):
        # Passed phases say nothing the finish message would not. An xdist
        # controller also sees its workers' reports: not ours.
        if report.passed or self.started is None:
            return
        kept = self.outcome_report
        if kept is None or (report.failed and not kept.failed):
            self.outcome_report = report

    def collection_finished(self, count):
        self._send(json.dumps({"op": "collection.finish", "count": count}))

    def worker_down(self, worker_id, pid, returncode):
        self._send(json.dumps({"op": "worker.down", "worker_id": worker_id, "pid": pid, "returncode": returncode}))

    def close(self):
        if self.ring is not None:
            self.ring.close()
            self.ring = None
            self.ring_conn = None
        if self.traceback_conn is not None:
            try:
                faulthandler.disable()
            finally:
                self.traceback_conn.close()
                self.traceback_conn = None
