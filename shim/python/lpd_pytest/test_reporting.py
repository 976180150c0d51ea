"""Per-test messages for crash attribution: test.start before a test's
setup, test.finish after its teardown, both one-way (no round trip), plus
Python's faulthandler pointed at a connection of its own so a fatal signal
delivers the traceback to lpd. Costs a couple of send() calls per test."""

import faulthandler
import json
import time

from . import messages
from .client import Connection, LpdError, LpdUnavailable

# While lpd is unreachable, try to reconnect at most this often (checked on
# the next message, never by a timer or a sleep).
RECONNECT_INTERVAL = 0.5


class TestReporter:
    def __init__(self, shim):
        self.shim = shim
        self.traceback_conn = None
        self.next_reconnect = 0.0
        self.reports = []
        self.started = None
        self.quoted = None

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

    def _send(self, line, check_peer=False):
        shim = self.shim
        if check_peer and shim.conn is not None and shim.conn.peer_closed():
            shim.drop_connection()  # lpd went away (restarted): reconnect below
        if shim.conn is None:
            now = time.monotonic()
            if now < self.next_reconnect:
                return
            self.next_reconnect = now + RECONNECT_INTERVAL
            if not shim.try_connect():
                return
            self.attach_traceback()
        try:
            shim.conn.send_line(line)
        except LpdUnavailable:
            shim.drop_connection()

    # -- hooks ------------------------------------------------------------
    def test_started(self, nodeid):
        self.reports = []
        self.quoted = messages.quote(nodeid)
        self.started = time.perf_counter()
        # Once per test, make sure lpd is still there: a restarted lpd must
        # hear which test runs before it can crash.
        self._send(messages.encode_test_start(self.quoted), check_peer=True)

    def report(self, report):
        # An xdist controller also sees its workers' reports: not ours.
        if self.started is not None:
            self.reports.append(report)

    def test_finished(self, nodeid):
        outcome, phase, message = "passed", "call", ""
        for report in self.reports:
            if report.failed:
                outcome = "failed" if report.when == "call" else "error"
                phase = report.when
                crash = getattr(report.longrepr, "reprcrash", None)
                message = crash.message if crash is not None else str(report.longrepr)[-1000:]
                break
            if report.skipped:
                outcome, phase = "skipped", report.when
                longrepr = report.longrepr
                message = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
        duration = time.perf_counter() - self.started if self.started is not None else 0.0
        self._send(messages.encode_test_finish(self.quoted, outcome, duration, message, phase))
        self.reports = []
        self.started = None

    def collection_finished(self, count):
        self._send(json.dumps({"op": "collection.finish", "count": count}))

    def worker_down(self, worker_id, pid, returncode):
        self._send(json.dumps({"op": "worker.down", "worker_id": worker_id, "pid": pid, "returncode": returncode}))

    def close(self):
        if self.traceback_conn is not None:
            try:
                faulthandler.disable()
            finally:
                self.traceback_conn.close()
                self.traceback_conn = None
