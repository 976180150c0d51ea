"""The `lpd_process` pytest fixture: helper servers supervised by lpd,
driven by the same starter classes people write for pytest-xprocess.

    from xprocess import ProcessStarter      # or lpd_pytest.process_fixture.ProcessStarter

    class Starter(ProcessStarter):
        pattern = "ready to accept connections"
        args = ["postgres", "-D", "data"]

    @pytest.fixture(scope="session")
    def db(lpd_process):
        pid, logfile = lpd_process.ensure("db", Starter)
        yield
        lpd_process.getinfo("db").terminate()

A conftest written for xprocess switches by renaming the fixture. The
difference is who waits: lpd starts the process in its own session, reads
its log as it grows (inotify, no sleep loop) and answers the moment the
pattern matches; a second `ensure` (another xdist worker, the next test
run) reuses the live process in constant time.

Load it with `-p lpd_pytest.process_fixture` or
`PYTEST_PLUGINS=lpd_pytest.process_fixture`; the daemon's socket comes
from $LPD_SOCKET (or lpd's default path)."""

import os
import pathlib
import tempfile
import time

import pytest

from lpd_pytest.client import Connection, LpdError

try:
    import py

    def _as_path(path):
        return py.path.local(path)
except ImportError:  # pragma: no cover - pytest ships py.path
    def _as_path(path):
        return pathlib.Path(path)

RUNNING_STATES = ("starting", "ready")
# How often a starter's startup_check() is asked again. It is the starter's
# own probe (pytest-xprocess asks every 0.1 s); lpd has no event for it.
STARTUP_CHECK_INTERVAL = 0.02


class ProcessStarter:
    """Same attributes as pytest-xprocess's ProcessStarter, for projects
    without xprocess installed. Subclasses set `pattern` and `args`."""

    env = None
    timeout = 120
    popen_kwargs = {}
    max_read_lines = 50
    terminate_on_interrupt = False

    def __init__(self, control_dir, process):
        self.control_dir = control_dir
        self.process = process

    def startup_check(self):
        return True


class _Log:
    """xprocess's starters may call self.process.log.debug()."""

    def debug(self, msg, *args):
        pass


class LpdProcessInfo:
    """What `getinfo(name)` gives: pid, log path, isrunning(), terminate(),
    like pytest-xprocess's XProcessInfo but answered by the daemon."""

    def __init__(self, process, name):
        self._process = process
        self.name = name
        try:
            info = process._request("proc.info", {"name": name})
        except LpdError as e:
            if e.code != "not_found":
                raise
            info = None
        self._info = info
        self.pid = info["pid"] if info else None
        self.logpath = _as_path(info["log_path"]) if info else None

    def isrunning(self, ignore_zombies=True):
        if self._info is None:
            return False
        info = self._process._request("proc.info", {"name": self.name})
        return info["state"] in RUNNING_STATES and bool(info.get("alive"))

    def terminate(self, *, kill_proc_tree=True, timeout=20):
        """Stops the process and its whole process group. Returns 1 when it
        was running and is gone now, 0 when there was nothing to stop, -1 on
        failure (xprocess's codes)."""
        if self._info is None:
            return 0
        try:
            result = self._process._request("proc.kill", {"name": self.name, "grace": float(timeout)},
                                            timeout=float(timeout) + 30)
        except LpdError:
            return -1
        return 1 if result.get("was_running") else 0


class LpdProcess:
    """The object behind the `lpd_process` fixture: xprocess's `ensure` and
    `getinfo`, with lpd doing the starting, waiting and reusing."""

    def __init__(self, rootdir, socket_path=None):
        self.rootdir = pathlib.Path(rootdir)
        self.socket_path = socket_path
        self.log = _Log()
        self._connection = None
        self._interruptible = set()

    def _request(self, op, fields, timeout=30.0):
        if self._connection is None:
            self._connection = Connection(self.socket_path, role="shim", client="lpd_process")
        return self._connection.request(op, fields, timeout=timeout)

    def ensure(self, name, preparefunc, restart=False, persist_logs=True):
        """Returns (pid, logfile) of a running process, starting it when it
        does not run (or when `restart`), and only once its log matched the
        starter's pattern. Raises RuntimeError with lpd's explanation (exit
        code, timeout, last log lines) when it does not become ready."""
        controldir = self.rootdir / name
        controldir.mkdir(parents=True, exist_ok=True)
        starter = preparefunc(_as_path(str(controldir)), self)
        pattern = starter.pattern
        pattern = getattr(pattern, "pattern", pattern)  # a compiled re works too
        timeout = float(getattr(starter, "timeout", 120))
        env = getattr(starter, "env", None)
        fields = {
            "name": name,
            "pattern": pattern,
            "argv": [str(a) for a in starter.args],
            "cwd": str(controldir),
            # Like xprocess (Popen(env=starter.env)): a starter's env replaces the environment.
            "env": dict(os.environ) if env is None else {str(k): str(v) for k, v in env.items()},
            "timeout": timeout,
            "max_read_lines": int(getattr(starter, "max_read_lines", 50) or 0),
            "restart": bool(restart),
        }
        try:
            # lpd enforces the timeout; we just wait for its answer.
            result = self._request("proc.ensure", fields, timeout=None)
        except LpdError as e:
            raise RuntimeError(f"could not start process {name!r}: {e.message}") from None
        if getattr(starter, "terminate_on_interrupt", False):
            self._interruptible.add(name)
        if not result["reused"]:
            self._wait_startup_check(name, starter, timeout)
        return result["pid"], _as_path(result["log_path"])

    @staticmethod
    def _wait_startup_check(name, starter, timeout):
        check = getattr(starter, "startup_check", None)
        if check is None:
            return
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError(f"startup_check() of process {name!r} did not pass within {timeout} s")
            time.sleep(STARTUP_CHECK_INTERVAL)

    def getinfo(self, name):
        return LpdProcessInfo(self, name)

    def terminate_interruptible(self):
        for name in sorted(self._interruptible):
            self.getinfo(name).terminate()

    def close(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None


_active = []


def _rootdir(config):
    cache = getattr(config, "cache", None)
    if cache is not None:
        return str(cache.mkdir("lpd_process"))
    return tempfile.mkdtemp(prefix="lpd_process-")


@pytest.fixture(scope="session")
def lpd_process(request):
    """Session-scoped handle on lpd's supervised helper processes."""
    process = LpdProcess(_rootdir(request.config))
    _active.append(process)
    yield process
    _active.remove(process)
    process.close()


def pytest_keyboard_interrupt(excinfo):
    for process in list(_active):
        process.terminate_interruptible()


def pytest_internalerror(excrepr, excinfo):
    for process in list(_active):
        process.terminate_interruptible()
