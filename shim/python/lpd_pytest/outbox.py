"""Every one-way message a pytest process sends lpd, kept until lpd has it.

Where they go, in order of preference:
- the event ring (event_ring.py), attached to the live connection: lpd
  reads it; the shim wakes lpd at most once per window, and not while the
  ring's read-by word promises a read. The ring is our
  memory, so it outlives lpd: while lpd is away (killed, restarting) the
  shim goes on writing into it, and the next lpd, handed the same ring,
  reads on from the stored read position. Nothing written there is lost or
  read twice.
- the replay queue, in this process: messages that found no room in the
  ring while lpd was away (or, without a ring, found no connection). Once
  anything is queued, later messages queue behind it, so lpd gets them in
  order. Replayed on reconnect.
- the socket, only where no ring can be used (no memfd, an lpd that refuses
  it): each line sent is also kept ("unconfirmed") until a reply to a
  request proves lpd read it, and replayed if the connection dies first.

Reconnecting is event-driven: tried on the next message (at most every
RECONNECT_INTERVAL seconds), never from a timer or a thread. Only at the very
end (flush()) does the shim wait, a bounded time, for an lpd that is away.

The queue is bounded (MAX_QUEUED_MESSAGES, MAX_QUEUED_BYTES); past it the
oldest messages are dropped, counted, and the count is reported to lpd (a
session.error) once it is back, so a report never looks complete when it is
not. Nothing here raises into pytest: the callers wrap it, and every
connection failure turns into "lpd is away"."""

import collections
import time

from . import event_ring, messages
from .client import LpdError, LpdUnavailable

RECONNECT_INTERVAL = 0.5
MAX_QUEUED_MESSAGES = 100_000
MAX_QUEUED_BYTES = 64 * 1024 * 1024
# Without a ring: a ping after this many socket lines (or bytes) confirms
# them, so that at most this much is ever replayed twice-or-lost-unknown.
CONFIRM_EVERY_MESSAGES = 1000
CONFIRM_EVERY_BYTES = 1024 * 1024
# At the end, how long to wait for an lpd that is away with messages still
# undelivered (a restart takes well under a second).
FLUSH_TIMEOUT = 15.0
FLUSH_BACKOFF_START = 0.05
FLUSH_BACKOFF_MAX = 1.0


class Outbox:
    def __init__(self, shim, on_connect=None, on_lost=None):
        self.shim = shim
        self.on_connect = on_connect  # more to do on each new connection (the traceback one)
        self.on_lost = on_lost  # and when lpd went away
        self.ring = None
        self.ring_conn = None  # the connection the ring is attached to
        self.conn = None  # the connection set up last (ring attached, queue replayed)
        self.queue = collections.deque()
        self.queued_bytes = 0
        self.unconfirmed = collections.deque()
        self.unconfirmed_bytes = 0
        self.dropped = 0
        self.next_reconnect = 0.0
        # The ring's C writer, for the per-test hot path: set while writing
        # straight into the ring keeps order (nothing queued before).
        self.fast = None
        if event_ring.supported():
            try:
                self.ring = event_ring.EventRing()
            except OSError:
                self.ring = None
        self._update_fast()
        if shim is not None:
            shim.on_connect = self.connected

    # -- connections ------------------------------------------------------
    def _ring_usable(self):
        """Writing into the ring keeps order: nothing queued before, and the
        ring is lpd's way in (attached to the connection, or lpd is away and
        will be handed it on reconnect; not a connection on the socket)."""
        return self.ring is not None and not self.queue and (self.conn is None or self.ring_conn is self.conn)

    def _update_fast(self):
        self.fast = self.ring.fast if self._ring_usable() else None

    def connected(self, conn):
        """A new connection that did run.register (ours or the pause path's):
        hands it the ring, then replays what is queued."""
        self.conn = conn
        self.ring_conn = None
        try:
            self._set_up(conn)
        except LpdUnavailable:
            self._lost(conn)
        self._update_fast()

    def attach_ring(self, conn):
        """Hands the ring to lpd on `conn`; True when lpd took it. The same
        ring after a reconnect: the new lpd reads on from where the old one
        stopped. Raises LpdUnavailable."""
        if self.ring is None:
            return False
        try:
            before = time.monotonic_ns()
            result = conn.request("ring.attach", pass_fd=self.ring.fileno())
            after = time.monotonic_ns()
        except (LpdError, OSError):
            return False  # an older lpd, or none free for it now: the socket
        self.ring_conn = conn
        self.ring.set_window(result.get("window_ms", 10) / 1000.0)
        self.ring.set_phase_mark(result.get("phase_mark", False))  # an older lpd reads test.phase records only
        # An older lpd keeps no read-by word: then a wake-up once per window.
        self.ring.set_read_by(result.get("monotonic_ns") if result.get("read_by") else None, before, after)
        return True

    def _set_up(self, conn):
        if self.on_connect is not None:
            self.on_connect()
        if not self.attach_ring(conn) and self.ring is not None \
                and self.ring.write_position != self.ring.read_position:
            # lpd cannot take the ring now (out of descriptors): what it
            # still holds must reach lpd before anything sent on the socket,
            # so lpd counts as away until it can.
            self._lost(conn)
            return
        # What went on the old connection's socket unconfirmed goes again,
        # before anything queued after it.
        while self.unconfirmed:
            line = self.unconfirmed.pop()
            self.unconfirmed_bytes -= len(line)
            self.queue.appendleft(line)
            self.queued_bytes += len(line)
        self._replay(conn)

    def _lost(self, conn):
        if self.shim is not None and conn is self.shim.conn:
            self.shim.drop_connection()
        if conn is self.conn:
            self.conn = None
            self.ring_conn = None
            if self.on_lost is not None:
                self.on_lost()
        self._update_fast()

    def _live(self):
        """The set-up live connection, reconnecting (at most every
        RECONNECT_INTERVAL) when lpd went away; None while it is away."""
        conn = self.shim.conn
        if conn is not None:
            if conn is not self.conn:
                self.connected(conn)  # the pause path reconnected on its own
            return self.shim.conn
        now = time.monotonic()
        if now < self.next_reconnect:
            return None
        self.next_reconnect = now + RECONNECT_INTERVAL
        self.shim.try_connect()  # calls connected() through shim.on_connect
        return self.shim.conn

    def _replay(self, conn):
        try:
            while self.queue:
                line = self.queue[0]
                if not self._deliver(conn, line):
                    break
                self.queue.popleft()
                self.queued_bytes -= len(line)
            if self.ring_conn is conn:
                conn.wake()
        except LpdUnavailable:
            self._lost(conn)
            return
        finally:
            self._update_fast()
        if not self.queue and self.dropped and self.shim.conn is conn:
            dropped, self.dropped = self.dropped, 0
            self.send(messages.encode(messages.session_error(
                "sessionfinish", "", f"lpd_pytest dropped {dropped} messages while lpd was unreachable "
                f"(its replay queue keeps at most {MAX_QUEUED_MESSAGES} messages or "
                f"{MAX_QUEUED_BYTES // (1024 * 1024)} MiB); lpd's results of this process are incomplete", "")))

    def _deliver(self, conn, line):
        """One line to lpd on `conn`: into the ring if attached, else the
        socket. False when the ring has no room even after a round trip.
        Raises LpdUnavailable."""
        if self.ring_conn is conn:
            if self.ring.write(line) >= 0:
                return True
            # lpd is behind: it reads the ring before it answers any request.
            self._ping(conn)
            return self.ring.write(line) >= 0
        conn.send_line(line)
        self.unconfirmed.append(line)
        self.unconfirmed_bytes += len(line)
        if len(self.unconfirmed) >= CONFIRM_EVERY_MESSAGES or self.unconfirmed_bytes >= CONFIRM_EVERY_BYTES:
            self._ping(conn)
        return True

    def _ping(self, conn):
        try:
            conn.request("ping")
        except LpdError:
            return  # a timeout: lpd is slow, not gone; the lines stay unconfirmed
        self.unconfirmed.clear()
        self.unconfirmed_bytes = 0

    # -- sending ------------------------------------------------------------
    def wake(self):
        """After a record went into the ring and lpd's window has passed."""
        conn = self.shim.conn
        if conn is not None and conn is self.ring_conn:
            try:
                conn.wake()
                return
            except LpdUnavailable:
                self._lost(conn)
                self.next_reconnect = 0.0  # a restart: try at once
        self._live()  # a new connection wakes lpd itself

    def send(self, line):
        """Any one-way message (a JSON line without its newline)."""
        if self._ring_usable() and self._ring_write(line):
            return
        if self.queue or self.conn is None or self.shim.conn is not self.conn:
            # The event that may bring lpd back (at most every
            # RECONNECT_INTERVAL), and what is queued goes first.
            self._live()
            conn = self.conn
            if self.queue and conn is not None and conn is self.shim.conn:
                self._replay(conn)
            if self._ring_usable() and self._ring_write(line):
                return
        conn = self.conn
        if conn is not None and conn is self.shim.conn and not self.queue:
            try:
                if self._deliver(conn, line):
                    if self.ring_conn is conn:
                        conn.wake()
                    return
            except LpdUnavailable:
                # Gone: queued, and one try at once (a restarted lpd may
                # already be there); the new connection replays it.
                self._lost(conn)
                self._enqueue(line)
                self.next_reconnect = 0.0
                self._live()
                return
        self._enqueue(line)

    def _ring_write(self, line):
        written = self.ring.write(line)
        if written < 0:
            return False
        if written > 0 or self.shim.conn is not self.ring_conn:
            self.wake()
        return True

    def _enqueue(self, line):
        self.queue.append(line)
        self.queued_bytes += len(line)
        self.fast = None
        while len(self.queue) > MAX_QUEUED_MESSAGES or self.queued_bytes > MAX_QUEUED_BYTES:
            self.queued_bytes -= len(self.queue.popleft())
            self.dropped += 1

    def pending(self):
        """True while something may not have reached lpd."""
        ring_unread = self.ring is not None and self.ring.write_position != self.ring.read_position
        return bool(self.queue or self.unconfirmed or ring_unread or self.dropped)

    def flush(self, timeout=FLUSH_TIMEOUT):
        """At the end: waits, at most `timeout` seconds, for lpd to be back
        if anything is undelivered, and replays it. True when lpd has all."""
        deadline = time.monotonic() + timeout
        backoff = FLUSH_BACKOFF_START
        while True:
            conn = self._live()
            if conn is not None and self.queue:
                self._replay(conn)
            if conn is not None and self.shim.conn is conn and not self.queue:
                try:
                    self._ping(conn)  # lpd read the ring and the socket up to here
                except LpdUnavailable:
                    self._lost(conn)
                    continue
                return True
            if not self.pending():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(backoff, left))
            backoff = min(backoff * 2, FLUSH_BACKOFF_MAX)
            self.next_reconnect = 0.0

    def close(self):
        if self.ring is not None:
            self.ring.close()
            self.ring = None
            self.ring_conn = None
            self.fast = None
