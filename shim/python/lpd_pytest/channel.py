"""The channel: every one-way message a pytest process sends lpd goes
through one Channel, which keeps it until lpd has it.

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

lpd is woken (a blank line on the connection: lpd reads the ring on any
bytes) at most once per lpd's window, as the ring's writer says; a message
sent on the socket wakes lpd by itself.

Reconnecting is event-driven: tried on the next message (at most every
RECONNECT_INTERVAL seconds), never from a timer or a thread; the connection
itself (hello, run.register, closing) is the link's (link.py). Only at the very
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
from .link import Backoff

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

_TEST_START_FORMAT = messages.TEST_START_FORMAT
_TEST_PASSED_FORMAT = messages.TEST_PASSED_FORMAT
_TEST_PHASE_FORMAT = messages.TEST_PHASE_FORMAT


class Channel:
    """Sends one-way messages to lpd over `link` (link.LpdLink, or None: a
    channel that only holds its ring, for tests). `on_connect()` runs first
    on each new connection the link joins (crash_traceback.py's
    connection), `on_lost()` when lpd went away.

    Per-test messages: test_start(), test_phase(), test_passed(), each
    taking the nodeid already quoted (messages.quote). Anything else:
    send(line). None of them returns anything or raises LpdUnavailable:
    while lpd is away, messages wait in the ring or the replay queue.
    Errors of the shim's own (a bug, MemoryError) do propagate: the hooks
    report them with shim_failed."""

    def __init__(self, link, on_connect=None, on_lost=None):
        self.link = link
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
        if link is not None:
            link.when_joined(self.connected)
            link.when_dropping(self._closing)
            if link.conn is not None:  # joined before this channel existed
                self.connected(link.conn)

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
        self._detach_ring()
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
        self.ring.set_reader(conn.fileno())
        self.ring.set_window(result.get("window_ms", 10) / 1000.0)
        self.ring.set_phase_mark(result.get("phase_mark", False))  # an older lpd reads test.phase records only
        # An older lpd keeps no read-by word: then a wake-up once per window.
        self.ring.set_read_by(result.get("monotonic_ns") if result.get("read_by") else None, before, after)
        return True

    def _set_up(self, conn):
        if self.on_connect is not None:
            self.on_connect()
        if not self.attach_ring(conn) and self._ring_unread():
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
        if self.link is not None and conn is self.link.conn:
            self.link.drop()
        if conn is self.conn:
            self.conn = None
            self._detach_ring()
            if self.on_lost is not None:
                self.on_lost()
        self._update_fast()

    def _detach_ring(self):
        """The ring is attached to no connection (lpd away, or a new one
        not yet set up): no read lpd promised is trusted."""
        self.ring_conn = None
        if self.ring is not None:
            self.ring.set_reader(-1)

    def _closing(self, conn):
        """The link closes `conn`: the C writer lets go of its descriptor."""
        if conn is self.ring_conn:
            self._detach_ring()

    def _live(self):
        """The set-up live connection, reconnecting (at most every
        RECONNECT_INTERVAL) when lpd went away; None while it is away."""
        conn = self.link.conn
        if conn is not None:
            if conn is not self.conn:
                self.connected(conn)  # the pause path reconnected on its own
            return self.link.conn
        now = time.monotonic()
        if now < self.next_reconnect or getattr(self.link, "refused", None) is not None:
            return None
        self.next_reconnect = now + RECONNECT_INTERVAL
        self.link.try_connect()  # calls connected() as the link's listener
        return self.link.conn

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
        if not self.queue and self.dropped and self.link.conn is conn:
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
    # The per-test messages, called around every test of a suite that may
    # have many thousands of tiny ones: one C call each while the ring can
    # be written straight away (self.fast), a wake-up when lpd's window has
    # passed, and send() with the same line formatted here otherwise.
    def test_start(self, quoted):
        """test.start of the test whose quoted nodeid is `quoted`."""
        fast = self.fast
        written = fast.start(quoted) if fast is not None else -1
        if written:
            self._after_fast(written, _TEST_START_FORMAT % quoted)

    def test_phase(self, quoted, phase):
        """test.phase: the test enters `phase` (call, teardown, setup); with
        `quoted` None (no test.start went out) nothing. The C writer may
        only set the ring's phase mark (ring.attach said lpd reads it)
        instead of writing a record."""
        if quoted is None:
            return
        fast = self.fast
        written = fast.phase(quoted, phase) if fast is not None else -1
        if written:
            self._after_fast(written, _TEST_PHASE_FORMAT % (quoted, phase))

    def test_passed(self, quoted, duration):
        """test.finish of a test that passed in `duration` seconds, with no
        rerun and nothing more to say (anything else: send() the full line)."""
        fast = self.fast
        written = fast.passed(quoted, duration) if fast is not None else -1
        if written:
            self._after_fast(written, _TEST_PASSED_FORMAT % (quoted, duration))

    def _after_fast(self, written, line):
        """The C writer's answer when it is not 0 (written, nothing due): 1,
        written and lpd's window has passed, wakes lpd; -1 (no C writer, or
        no room) sends `line`, the same message, the ordinary way."""
        if written > 0:
            self.wake()
        else:
            self.send(line)

    def wake(self):
        """After a record went into the ring and lpd's window has passed."""
        conn = self.link.conn
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
        if self.queue or self.conn is None or self.link.conn is not self.conn:
            # The event that may bring lpd back (at most every
            # RECONNECT_INTERVAL), and what is queued goes first.
            self._live()
            conn = self.conn
            if self.queue and conn is not None and conn is self.link.conn:
                self._replay(conn)
            if self._ring_usable() and self._ring_write(line):
                return
        conn = self.conn
        if conn is not None and conn is self.link.conn and not self.queue:
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
        if written > 0 or self.link.conn is not self.ring_conn:
            self.wake()
        return True

    def _enqueue(self, line):
        self.queue.append(line)
        self.queued_bytes += len(line)
        self.fast = None
        while len(self.queue) > MAX_QUEUED_MESSAGES or self.queued_bytes > MAX_QUEUED_BYTES:
            self.queued_bytes -= len(self.queue.popleft())
            self.dropped += 1

    def undelivered(self):
        """True when some message could not go to lpd at all (queued while
        lpd was away or refused this process, or dropped): what an xdist
        worker tells its controller, which then sends lpd its own copy of
        the worker's results (TestReporter.worker_unsent)."""
        return bool(self.queue or self.dropped or self.conn is None)

    def pending(self):
        """True while something may not have reached lpd."""
        return bool(self.queue or self.unconfirmed or self._ring_unread() or self.dropped)

    def _ring_unread(self):
        return self.ring is not None and self.ring.write_position != self.ring.read_position

    def flush(self, timeout=FLUSH_TIMEOUT):
        """At the end: waits, at most `timeout` seconds, for lpd to be back
        if anything is undelivered, and replays it. True when lpd has all."""
        if getattr(self.link, "refused", None) is not None:
            return False  # lpd said no for good: nothing to wait for
        deadline = time.monotonic() + timeout
        backoff = Backoff()
        while True:
            conn = self._live()
            if conn is not None and self.queue:
                self._replay(conn)
            if conn is not None and self.link.conn is conn and not self.queue:
                try:
                    self._ping(conn)  # lpd read the ring and the socket up to here
                except LpdUnavailable:
                    self._lost(conn)
                    continue
                return True
            if not self.pending():
                return True
            if time.monotonic() >= deadline:
                return False
            backoff.wait(deadline)
            self.next_reconnect = 0.0

    def close(self):
        """Lets go of the ring (after run.end: lpd has read it all or never
        will). Sending after this goes on the socket or the queue."""
        if self.ring is not None:
            self.ring.close()
            self.ring = None
            self.ring_conn = None
            self.fast = None
