"""This pytest process's link to lpd: which socket and run it belongs to,
the connection that says hello and registers or joins that run, who is told
when a new connection has joined, and how the link ends (run.end).

Sending one-way messages over it is channel.py's job; pauses are
live_pause.py's. Nothing here waits or retries on its own: the callers
decide when to reconnect (the channel on its next message, a pause at once
with Backoff)."""

import os
import socket
import sys
import time

from . import messages
from .client import Connection, LpdError, LpdUnavailable, default_socket_path

# lpd away: the first wait before trying again, doubled up to the most. A
# restart takes well under a second, so a few tries find the new lpd.
BACKOFF_START = 0.05
BACKOFF_MAX = 1.0


class Backoff:
    """Waits between tries to reach an lpd that is away: BACKOFF_START
    seconds, doubling up to BACKOFF_MAX, never past a deadline. Shared by
    the pause path and the channel's final flush, so both retry alike."""

    __slots__ = ("delay",)

    def __init__(self):
        self.delay = BACKOFF_START

    def reset(self):
        """After a success: the next wait is short again."""
        self.delay = BACKOFF_START

    def wait(self, deadline):
        """Sleeps the current delay, at most until `deadline` (a
        time.monotonic() value), then doubles the delay. Returns nothing."""
        time.sleep(min(self.delay, max(0.0, deadline - time.monotonic())))
        self.delay = min(self.delay * 2, BACKOFF_MAX)


# run.register errors that asking again will not change (another user's run
# id, an ended run, a bad id): the run is refused, lpd is not away.
REFUSALS = ("permission_denied", "conflict", "bad_request")


class RunRefused(LpdError):
    """lpd refused to let this process join its run (REFUSALS): its results
    never reach lpd, and the shim does not wait for lpd at the end."""

    def __init__(self, text):
        Exception.__init__(self, text)
        self.code = "refused"
        self.message = text


class LpdLink:
    """One pytest process's link to lpd, as controller (or plain pytest) or
    as an xdist worker.

    `socket_path` (None: default_socket_path()), `run_id` (None: connect()
    registers a new run; else it joins that one) and `worker_id` (xdist's
    gateway id, None for a controller). `conn` is the live, registered
    Connection or None while lpd is away (or was never reached)."""

    def __init__(self, socket_path=None, run_id=None, worker_id=None):
        self.socket_path = socket_path or default_socket_path()
        self.run_id = run_id
        self.worker_id = worker_id
        self.conn = None
        self.last_error = None  # why the last try_connect() failed
        # lpd's refusal of this process's run (text): final, not a restart,
        # so nothing waits for lpd to come back and nothing says it is away.
        self.refused = None
        self.hostname = socket.gethostname()
        self._joined = []
        self._dropping = []

    def when_joined(self, listener):
        """Adds `listener(conn)`, called with each new connection once it
        joined the run, in the order listeners were added (the channel
        first: it hands lpd the event ring and replays what lpd missed, so
        that lpd has this process's messages before anything else the new
        connection carries). A listener may raise LpdUnavailable: lpd went
        away again, and the connection is dropped."""
        self._joined.append(listener)

    def when_dropping(self, listener):
        """Adds `listener(conn)`, called just before the link closes its
        connection `conn` (drop(), close()): whoever uses its descriptor
        lets go of it first. Must not raise."""
        self._dropping.append(listener)

    def _closing(self, conn):
        for listener in self._dropping:
            listener(conn)
        conn.close()

    def connect(self):
        """Connects, says hello and registers (or joins) the run; tells the
        listeners. Returns the run id. Raises LpdUnavailable (no lpd, or it
        went away while being set up) or LpdError (lpd refused the run)."""
        if self.refused is not None:
            raise RunRefused(self.refused)
        conn = Connection(self.socket_path, role="shim", client="lpd_pytest")
        try:
            fields = messages.run_register_fields(sys.argv, os.getcwd(), self.hostname, self.run_id, self.worker_id)
            result = conn.request("run.register", **fields)
        except LpdError as e:
            conn.close()
            if e.code in REFUSALS:
                self.refused = f"lpd refused this process's run{' ' + self.run_id if self.run_id else ''}: {e}"
                raise RunRefused(self.refused) from None
            raise
        except Exception:
            conn.close()
            raise
        self.run_id = result["run_id"]
        self.conn = conn
        try:
            for listener in self._joined:
                listener(conn)
                if self.conn is not conn:
                    break
        except LpdUnavailable:
            self.drop()
        if self.conn is not conn:
            raise LpdUnavailable(self.socket_path, "the connection closed while the shim set it up")
        return self.run_id

    def try_connect(self):
        """connect(), answering True or False instead of raising; why it
        failed stays in `last_error` (text)."""
        try:
            self.connect()
            self.last_error = None
            return True
        except (LpdUnavailable, LpdError) as e:
            self.last_error = str(e)
            return False

    def drop(self):
        """Closes the connection without a word (lpd is gone, or the
        connection is no good any more); the run stays lpd's."""
        if self.conn is not None:
            self._closing(self.conn)
            self.conn = None

    def close(self, clean=True):
        """The end of this process's part of the run: run.end (when `clean`,
        waiting at most 5 s; an lpd that is away is not waited for), then
        the connection closed. Never raises."""
        if self.conn is None:
            return
        if clean:
            try:
                self.conn.request("run.end", timeout=5)
            except (LpdUnavailable, LpdError):
                pass
        self._closing(self.conn)
        self.conn = None


def link_for(config):
    """The link this pytest process uses (not yet connected), from pytest's
    `config`: an xdist worker joins the run its controller named
    (workerinput's lpd_run_id and lpd_socket, pytest_configure_node);
    anything else uses --lpd-socket, else $LPD_SOCKET and the per-user
    default, and joins $LPD_RUN_ID (set by `lpctl run`) or a new run."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return LpdLink(workerinput.get("lpd_socket"), workerinput.get("lpd_run_id"), workerinput.get("workerid"))
    return LpdLink(config.getoption("lpd_socket") or default_socket_path(), os.environ.get("LPD_RUN_ID") or None)
