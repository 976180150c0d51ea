"""SIGTERM while a test runs: reported as an interrupted test, not lost.

pytest turns only SIGINT into KeyboardInterrupt; SIGTERM's default action
kills the process on the spot, and lpd could only call that a crash of the
running test. With the shim connected to lpd, a SIGTERM that arrives while a
test runs raises TerminatedBySignal (a KeyboardInterrupt) in it instead:
pytest stops the session as after Ctrl-C (teardowns, session finish, its
summary), the shim reports that test `interrupted` with the phase it was in,
and at the very end (finish()) the shim re-raises SIGTERM with its default
action, so the process still ends killed by SIGTERM, as without the shim.

Outside a test the handler does at once what was there before: a previous
Python handler is called, else the default action kills the process. A
SIGTERM that was ignored stays ignored (no handler is installed)."""

import os
import signal
import threading


class TerminatedBySignal(KeyboardInterrupt):
    """SIGTERM arrived while a test was running."""


class SigtermGuard:
    def __init__(self, test_running):
        self.test_running = test_running  # callable: True while a test runs here
        self.previous = None
        self.installed = False
        self.received = False

    def install(self):
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_IGN, None):
            return  # ignored, or set outside Python: left alone
        self.previous = previous
        signal.signal(signal.SIGTERM, self._handle)
        self.installed = True

    def _handle(self, signo, frame):
        if self.test_running():
            self.received = True
            raise TerminatedBySignal("interrupted by SIGTERM")
        self._pass_on(signo, frame)

    def _pass_on(self, signo, frame):
        previous = self.previous
        if callable(previous):
            previous(signo, frame)
            return
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    def uninstall(self):
        if self.installed and signal.getsignal(signal.SIGTERM) == self._handle:
            signal.signal(signal.SIGTERM, self.previous)
        self.installed = False

    def finish(self):
        """At the very end: a SIGTERM taken during a test now does what it
        would have done."""
        self.uninstall()
        if self.received:
            self.received = False
            self._pass_on(signal.SIGTERM, None)
