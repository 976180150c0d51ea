"""Every pause of the run, announced on the terminal of the pytest process
that owns it (issue 15, h15term).

Under pytest-xdist a test pauses in a worker, whose output nobody sees: the
progress dots just stop. So the process that owns the terminal (the xdist
controller, or a plain single-process pytest) listens to lpd's pause
events for its run and prints, as each happens, the lines lpd built for it
(the events' `announcement` field: the test, its worker, the failure text
or checkpoint task, and the resume command to paste; then a line when the
pause is resumed, times out or goes stale). `lpctl run` prints the same
field, so both show the same text; under `lpctl run` (LPD_ATTEMPT set)
pytest stays quiet and lpctl prints them, once.

How it stays out of pytest's way:
- One background thread on a connection of its own, blocked reading lpd's
  pushes (events.subscribe, filtered by lpd to this run's pause events):
  no cost on the per-test path, no polling.
- lpd restarting or away: the thread reconnects (backing off up to a
  second, waking at once to stop) and subscribes again from the last seq
  it saw, so no event is lost or shown twice.
- It never raises into pytest: anything that goes wrong in the thread ends
  in silence (or a retry), never in a test's outcome.
- Whole lines only: the lines go out in one write, starting on a fresh
  line when pytest left its current one open (progress dots). They go to a
  duplicate of the terminal's descriptor taken at session start, never
  through pytest's text stream (not thread-safe), so a test's output
  capture (fd 1 redirected while a test runs) does not swallow them either.
  pytest flushes its progress as it goes; output it still buffers may come
  after a line announced meanwhile.
- -q still shows them (like the run id line): a pause nobody hears of is a
  hung run. -qq drops only the "resumed" lines.
"""

import os
import socket
import threading
import time

from .client import Connection, LpdUnavailable
from .link import BACKOFF_MAX, BACKOFF_START

ATTEMPT_ENV = "LPD_ATTEMPT"  # set by lpd for the command of `lpctl run` only
STOP_JOIN_SECONDS = 2.0
# How long a test that paused in this process waits, once resumed, for the
# line that says so: lpd pushes it as it replies, so it comes in about a
# millisecond; the bound only matters when lpd went away in between.
END_SHOWN_WAIT_SECONDS = 2.0


def wanted(link, reporter):
    """Whether this process announces pauses: it owns the terminal (not an
    xdist worker), belongs to an lpd run, has a terminal reporter, and is
    not the command of `lpctl run` (which prints these lines itself)."""
    return (link is not None and link.run_id and not link.worker_id and reporter is not None
            and not os.environ.get(ATTEMPT_ENV))


class PauseAnnouncer:
    """Prints the run's pause events on `reporter`'s terminal, from a
    background thread, until stop()."""

    def __init__(self, socket_path, run_id, reporter):
        self.socket_path = socket_path
        self.run_id = run_id
        self.reporter = reporter
        self.verbosity = getattr(reporter, "verbosity", 0)
        # Events of an earlier pytest that used the same run id (a user's
        # LPD_RUN_ID) are not this session's: lpd's clock is this machine's.
        self.started_at = time.time()
        self._stopping = threading.Event()  # no more connections
        self._silenced = False  # no more lines (stop() returned)
        # Guards the connection handle only: stop() never waits behind a
        # write blocked on a terminal that does not read.
        self._conn_lock = threading.Lock()
        self._conn = None
        self._last_seq = None
        self._announced = set()  # pause ids whose "PAUSED" lines were shown
        self._shown = set()  # (event, pause_id): nothing is shown twice
        self._ended = set()  # pause ids whose end line is on the terminal (or was left out: -qq)
        self._ended_cond = threading.Condition()
        self._fd = self._terminal_fd()
        self._line_after_us = None  # pytest's current line as our last lines left it
        self._thread = threading.Thread(target=self._run, name="lpd-pause-announcer", daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        """Ends the thread, after it showed what lpd had already sent: the
        last test's resume may be on its way while the session ends. Our
        end of the connection is shut for writing, so lpd closes its end
        after what it queued; the thread reads up to that end. Waits at most
        STOP_JOIN_SECONDS for it, then cuts the connection."""
        self._stopping.set()
        self._shut(socket.SHUT_WR)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(STOP_JOIN_SECONDS)
        self._silenced = True  # nothing more on the terminal once stop() returned
        if self._thread.is_alive():
            self._shut(socket.SHUT_RDWR)
            return  # still writing (a terminal that does not read): its descriptor stays with it
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def _shut(self, how):
        with self._conn_lock:
            conn = self._conn
            if conn is not None:
                try:
                    conn.sock.shutdown(how)
                except OSError:
                    pass

    # -- the thread -------------------------------------------------------
    def _run(self):
        backoff = BACKOFF_START
        while not self._stopping.is_set():
            try:
                conn = self._subscribe()
            except Exception:  # lpd away, restarting, or refusing: try again
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_START
            try:
                while True:  # until lpd closes (gone, or after stop()'s shutdown)
                    push = conn.next_push()
                    if push is not None:
                        self._on_push(push)
            except Exception:  # the connection ended
                pass
            finally:
                with self._conn_lock:
                    self._conn = None
                conn.close()

    def _subscribe(self):
        conn = Connection(self.socket_path, role="cli", client="lpd_pytest pause announcer")
        try:
            fields = {"run_id": self.run_id, "types": ["pause."]}
            if self._last_seq is not None:
                fields["since"] = self._last_seq  # after a reconnect: exactly what was missed
            else:
                fields["replay"] = True  # what happened before the thread got here
            result = conn.request("events.subscribe", fields)
        except BaseException:
            conn.close()
            raise
        if self._last_seq is None and isinstance(result, dict) and isinstance(result.get("last_seq"), int):
            # Replayed events come next, at or below it; later ones above.
            self._last_seq = result["last_seq"]
        with self._conn_lock:
            if self._stopping.is_set():
                conn.close()
                raise LpdUnavailable(self.socket_path, "stopping")
            self._conn = conn
        return conn

    def _on_push(self, push):
        event = push.get("event", "")
        data = push.get("data")
        if not isinstance(data, dict) or not isinstance(event, str) or not event.startswith("pause."):
            return
        seq = data.get("seq")
        if isinstance(seq, int) and (self._last_seq is None or seq > self._last_seq):
            self._last_seq = seq
        text = data.get("announcement")
        pause_id = data.get("pause_id")
        if not isinstance(text, str) or not text or not isinstance(pause_id, str):
            return
        when = data.get("time")
        if isinstance(when, (int, float)) and when < self.started_at - 1.0 and pause_id not in self._announced:
            return  # an earlier session's pause (same run id)
        key = (event, pause_id)
        if key in self._shown:
            return
        self._shown.add(key)
        if event == "pause.created":
            self._announced.add(pause_id)
        elif pause_id not in self._announced:
            return  # the end of a pause this session never showed
        if event == "pause.resumed" and self.verbosity <= -2:
            self._end_shown(pause_id)
            return
        self._write_lines(text.split("\n"))
        if event != "pause.created":
            self._end_shown(pause_id)

    def _end_shown(self, pause_id):
        with self._ended_cond:
            self._ended.add(pause_id)
            self._ended_cond.notify_all()

    def wait_end_shown(self, pause_id, timeout=END_SHOWN_WAIT_SECONDS):
        """For a pause of this process that just ended: returns once its end
        line is on the terminal (or `timeout` seconds passed, or the thread
        stopped). A test printing after its checkpoint (pytest -s) would
        otherwise race this thread's line, which could land inside one of
        the test's lines."""
        with self._ended_cond:
            self._ended_cond.wait_for(
                lambda: pause_id in self._ended or self._silenced or not self._thread.is_alive(), timeout)

    # -- the terminal -----------------------------------------------------
    def _terminal_fd(self):
        """A duplicate of the descriptor pytest's terminal writer writes to,
        taken now (session start: no capture active), so the lines reach the
        terminal even while a test's output is captured. None when the
        writer has no descriptor (an in-memory stream, as in pytester's
        in-process runs): then nothing is announced."""
        try:
            return os.dup(self.reporter._tw._file.fileno())  # os.dup: not inherited by children
        except Exception:
            return None

    def _write_lines(self, lines):
        """Writes whole lines to the terminal's descriptor, never through
        pytest's text stream: that stream is not thread-safe (io's docs) and
        pytest's thread writes to it. Only reads of its state here. Only this
        thread writes; stop() closes the descriptor once it ended."""
        if self._silenced or self._fd is None:
            return
        try:
            tw = self.reporter._tw
            if getattr(tw, "hasmarkup", False):
                lines = [tw.markup(line, yellow=True, bold=True) for line in lines]
            text = "".join(line + "\n" for line in lines)
            # A fresh line unless pytest left its line empty, or wrote
            # nothing since our last lines (its count of the current line,
            # which we do not touch, still holds what it wrote before them).
            # Told by the line's identity, which a one-character line does
            # not keep: CPython shares those ("" + "F" is the one "F"), so
            # a progress "F" after our lines looked like nothing new and the
            # next lines were glued to it ("Flpd: ... is stale").
            current = getattr(tw, "_current_line", None)
            if tw.width_of_current_line and (current is None or len(current) <= 1
                                             or current is not self._line_after_us):
                text = "\n" + text
            data = text.encode("utf-8", "replace")
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
            self._line_after_us = current
        except Exception:
            pass  # a terminal that went away: nothing to tell pytest
