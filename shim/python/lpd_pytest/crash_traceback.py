"""Python's faulthandler pointed at a connection of its own to lpd (role
"traceback"), so that a fatal signal delivers the traceback to lpd, and,
through the stderr descriptor passed along, to the console as well. lpd
pins the crash on the test the channel last said was running.

It follows the link: set up on each connection the channel sets up, back
to stderr while lpd is away, and kept open after the session until the
process ends (a crash at exit)."""

import faulthandler
import os
import sys

from .client import Connection, LpdError, LpdUnavailable

# The traceback connection of the last session, open until the process
# ends: a crash at exit (an atexit handler, interpreter shutdown) still
# sends its traceback to lpd.
_exit_traceback = None


def stderr_descriptor():
    """A private copy of the real stderr (pytest's faulthandler picks it the
    same way), or None."""
    try:
        fileno = sys.stderr.fileno()
        if fileno < 0:
            raise ValueError
    except (AttributeError, ValueError, OSError):
        try:
            fileno = sys.__stderr__.fileno()
        except (AttributeError, ValueError, OSError):
            return None
    try:
        return os.dup(fileno)  # not inherited: Python's dup is close-on-exec
    except OSError:
        return None


class CrashTraceback:
    """faulthandler's target for one session: lpd on `socket_path` while it
    is there, the real stderr otherwise. `warn(where, error)` reports a
    failure of the shim's own (reporter.shim_failed). With
    `socket_path` None it holds nothing (a reporter made for tests)."""

    def __init__(self, socket_path, warn):
        self.socket_path = socket_path
        self.warn = warn
        self.conn = None
        self.stderr_fd = stderr_descriptor() if socket_path is not None else None

    def attach(self):
        """Opens the raw traceback connection, hands lpd our stderr with it
        (lpd copies the traceback there too: the console still shows it) and
        points faulthandler at it. Without lpd, faulthandler stays where
        pytest put it (stderr). Never raises for lpd's absence."""
        conn = None
        try:
            conn = Connection(self.socket_path, role="traceback", client="lpd_pytest")
            try:
                conn.request("traceback.attach", pass_fd=self.stderr_fd)
            except LpdError:
                if self.stderr_fd is None:
                    raise
                conn.close()  # an lpd that takes no descriptor there: as before
                conn = Connection(self.socket_path, role="traceback", client="lpd_pytest")
                conn.request("traceback.attach")
        except (LpdUnavailable, LpdError, OSError):
            if conn is not None:
                conn.close()
            return
        old, self.conn = self.conn, conn
        faulthandler.enable(file=conn.fileno(), all_threads=True)
        if old is not None:
            old.close()

    def lost(self):
        """lpd went away: until it is back, a crash's traceback goes to
        stderr, as without lpd."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            if self.stderr_fd is not None:
                faulthandler.enable(file=self.stderr_fd, all_threads=True)
            else:
                faulthandler.disable()
        finally:
            conn.close()

    def keep_for_exit(self):
        """At the session's end: the connection (and faulthandler on it)
        stays open until the process ends; an earlier session's (pytester)
        is closed. Our stderr copy is closed unless faulthandler may still
        write to it (lpd went away)."""
        global _exit_traceback
        if self.conn is not None:
            if _exit_traceback is not None and _exit_traceback is not self.conn:
                _exit_traceback.close()  # an earlier session in this process (pytester)
            _exit_traceback = self.conn
            self.conn = None
            try:
                faulthandler.enable(file=_exit_traceback.fileno(), all_threads=True)
            except (ValueError, OSError, RuntimeError) as e:
                self.warn("faulthandler at exit", e)
        elif faulthandler.is_enabled():
            return  # it may write to our copy of stderr (lpd went away): kept open
        if self.stderr_fd is not None:
            os.close(self.stderr_fd)
            self.stderr_fd = None
