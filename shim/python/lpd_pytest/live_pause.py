"""Live pause and resume over lpd's socket: the blocking pause call that
survives a daemon restart by reconnecting its link (link.py), checkpoint(),
and what they return."""

import os
import time
import uuid

from . import messages
from .client import LpdError, LpdUnavailable
from .link import Backoff

# Extra seconds the shim waits beyond a pause's timeout: the daemon's timer
# answers first; this only guards against a daemon that never answers.
REPLY_GRACE_SECONDS = 5.0

MOCK_VALUES = {"true": True, "false": False, "none": None}
# No --pause-checkpoint-mock: checkpoints really pause. Not None, which is
# the mocked result of `--pause-checkpoint-mock none`.
NOT_MOCKED = object()


# How lpd's `unavailable` answer starts when its state directory refused a
# write (ENOSPC, EIO): see daemon/core/storage_failure.h.
STATE_DIR_FAILURE = "cannot write lpd's state directory "


def new_pause_id():
    return uuid.uuid4().hex[:16]


class Decision:
    """What a checkpoint returns: result is True, False or None; reason is
    the resumer's text. Unpacks as (result, reason)."""

    __slots__ = ("result", "reason", "status", "pause_id")

    def __init__(self, result, reason, status="resumed", pause_id=None):
        self.result = result
        self.reason = reason
        self.status = status
        self.pause_id = pause_id

    def __iter__(self):
        return iter((self.result, self.reason))

    def __eq__(self, other):
        if isinstance(other, Decision):
            return (self.result, self.reason, self.status) == (other.result, other.reason, other.status)
        return NotImplemented

    def __repr__(self):
        return f"Decision(result={self.result!r}, reason={self.reason!r}, status={self.status!r})"


class Pauses:
    """Live pauses of one pytest process: pause() and checkpoint() over
    its link to lpd (link.LpdLink). `mock` is --pause-checkpoint-mock's
    value (NOT_MOCKED: checkpoints really pause)."""

    def __init__(self, link, mock=NOT_MOCKED, ended=None):
        self.link = link
        self.mock = mock
        # ended(pause_id): called once a pause of ours ended, before the
        # test goes on (the terminal's announcement of it comes first).
        self.ended = ended

    def pause(self, kind, nodeid, timeout, task="", original_failure="", pause_id=None):
        """Blocks until the pause is resumed, times out or is cancelled.
        Returns the daemon's outcome: {"status", "result", "reason", "failure_reason"}.
        If the connection drops (the daemon restarted), reconnects with
        backoff and re-sends the same pause_id, so the wait goes on; an
        `unavailable` answer (lpd out of descriptors) is retried the same way."""
        link = self.link
        pause_id = pause_id or new_pause_id()
        fields = messages.pause_request_fields(pause_id, link.run_id, kind, nodeid, timeout, task=task,
                                               original_failure=original_failure, worker_id=link.worker_id,
                                               hostname=link.hostname, cwd=os.getcwd())
        deadline = time.monotonic() + timeout + REPLY_GRACE_SECONDS
        backoff = Backoff()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return {"status": "timed_out", "pause_id": pause_id}
            try:
                if link.conn is None:
                    link.connect()
                    fields["run_id"] = link.run_id
                    backoff.reset()
                outcome = link.conn.request("pause.request", fields, timeout=left)
                if self.ended is not None:
                    self.ended(pause_id)
                return outcome
            except LpdUnavailable:
                link.drop()
                backoff.wait(deadline)
            except LpdError as e:
                if e.code == "timeout":
                    return {"status": "timed_out", "pause_id": pause_id}
                if e.code != "unavailable" or e.message.startswith(STATE_DIR_FAILURE):
                    # A full (or failing) state directory: lpd paused
                    # nothing and cannot record a pause until someone frees
                    # space. Waiting here in silence would look like a
                    # pause; the test hears why instead.
                    raise
                # lpd cannot watch this process right now (out of
                # descriptors) and paused nothing: ask again, as after a
                # dropped connection, until the pause's own deadline.
                backoff.wait(deadline)

    def checkpoint(self, task="", timeout=300.0):
        """Pauses the running test (its nodeid from PYTEST_CURRENT_TEST)
        until it is resumed; returns a Decision. Mocked: the mock value at
        once. Raises LpdUnavailable when lpd cannot be reached to begin with,
        LpdError when lpd refuses the pause."""
        if self.mock is not NOT_MOCKED:
            return Decision(self.mock, "Mock", status="mock")
        if self.link.conn is None and not self.link.try_connect():
            raise LpdUnavailable(self.link.socket_path, "cannot reach lpd for checkpoint()")
        outcome = self.pause("checkpoint", current_nodeid(), timeout, task=task)
        status = outcome.get("status")
        if status == "resumed":
            return Decision(outcome.get("result"), outcome.get("reason", ""), status, outcome.get("pause_id"))
        return Decision(None, f"checkpoint {status}", status, outcome.get("pause_id"))


def current_nodeid():
    """The running test, from what pytest itself keeps in the environment
    ("<nodeid> (<phase>)"), so that no hook has to track it."""
    current = os.environ.get("PYTEST_CURRENT_TEST")
    if not current:
        return None
    nodeid, _, _ = current.rpartition(" (")
    return nodeid or current


def append_failure_reason(report, reason):
    """Adds the external failure reason to a failed report, where both the
    terminal summary and --junitxml read it."""
    title = "external failure reason (lpd)"
    longrepr = report.longrepr
    if hasattr(longrepr, "addsection"):
        longrepr.addsection(title, reason)
    elif isinstance(longrepr, tuple) and len(longrepr) == 3:
        path, lineno, message = longrepr
        report.longrepr = (path, lineno, f"{message}\n{title}: {reason}")
    else:
        report.longrepr = f"{longrepr}\n\n{title}: {reason}"
