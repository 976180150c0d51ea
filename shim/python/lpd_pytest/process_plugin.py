"""The helper-process part of lpd's pytest plugin: the `lpd_process`
fixture everywhere lpd_pytest loads, and pytest-xprocess's `xprocess`
fixture with --xkill/--xshow whenever pytest-xprocess's own plugin is not
active (not installed, or `-p no:xprocess`). Both give the same
lpd_pytest.xprocess.XProcess of this pytest process, which talks to the
plugin's daemon (--lpd-socket, an xdist controller's socket, $LPD_SOCKET,
the default) and keys helpers by pytest's rootdir.

The lines a helper wrote while a test ran are added to the report of that
test when it fails (a section "lpd helper NAME: LOG", which lpd's JUnit
carries as <system-out>).

PYTEST_DONT_REWRITE"""

import errno
import importlib.metadata
import os
import sys
import tempfile

import pytest

from .client import LpdError, LpdUnavailable
from .junit_fields import HELPER_SECTION_PREFIX as SECTION_PREFIX
from .xprocess import XProcess

XPROCESS_PLUGIN_NAME = "lpd_xprocess"
PROCESS_PLUGIN_NAME = "lpd_process"
# A failing test's report carries at most this much of each helper's log
# (the newest part): enough for the lines around a failure, never a whole
# database log.
MAX_SECTION_BYTES = 16 * 1024

_xprocess_key = pytest.StashKey()


def register(pluginmanager):
    """Called from lpd_pytest's pytest_addoption: registers the fixtures'
    plugins (the xprocess one only when pytest-xprocess will not be)."""
    if pluginmanager.get_plugin(PROCESS_PLUGIN_NAME) is None:
        pluginmanager.register(ProcessPlugin(), PROCESS_PLUGIN_NAME)
    if pluginmanager.get_plugin(XPROCESS_PLUGIN_NAME) is None and not xprocess_plugin_expected(pluginmanager):
        pluginmanager.register(XprocessPlugin(), XPROCESS_PLUGIN_NAME)


def xprocess_plugin_expected(pluginmanager):
    """Whether pytest-xprocess's own plugin is or will be active in this
    pytest: registered, or installed (entry point "xprocess") with plugin
    autoload on and not blocked by -p no:xprocess, or named in
    PYTEST_PLUGINS. (Entry points load in no set order: lpd's may come
    first.)"""
    if pluginmanager.is_blocked("xprocess"):
        return False
    if pluginmanager.has_plugin("xprocess") or "xprocess.pytest_xprocess" in sys.modules:
        return True
    if "xprocess.pytest_xprocess" in os.environ.get("PYTEST_PLUGINS", ""):
        return True
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    try:
        return any(ep.name == "xprocess" for ep in importlib.metadata.entry_points(group="pytest11"))
    except Exception:  # a broken distribution's metadata: pytest's own loading decides
        return False


def socket_path_of(config):
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("lpd_socket"):
        return workerinput["lpd_socket"]
    return config.getoption("lpd_socket", None) or None


def control_root(config):
    """Where starters get their control_dir: pytest-xprocess's own
    (<cache>/d/.xprocess) when the cache is on, else a fresh directory."""
    cache = getattr(config, "cache", None)
    if cache is not None:
        return cache.mkdir(".xprocess")
    return None  # h14fixC: XProcess makes one, and removes it at close()


def xprocess_of(config):
    """This pytest process's XProcess, made on first use and closed (its
    leases dropped) when pytest unconfigures."""
    xprocess = config.stash.get(_xprocess_key, None)
    if xprocess is None:
        xprocess = XProcess(config, control_root(config), socket_path_of(config), scope=str(config.rootpath))
        config.stash[_xprocess_key] = xprocess
        config.add_cleanup(xprocess.close)
        # Per-test hooks only once a session uses helpers: others pay nothing per test.
        if config.pluginmanager.get_plugin(HelperLogSections.PLUGIN_NAME) is None:
            config.pluginmanager.register(HelperLogSections(xprocess), HelperLogSections.PLUGIN_NAME)
    return xprocess


def _terminate_interruptible(config):
    xprocess = config.stash.get(_xprocess_key, None)
    if xprocess is not None:
        xprocess.terminate_interruptible()


def _first_kept(f, start, size):
    """h14logcap: lpd's size cap frees the oldest part of a long helper log
    (a hole, read as zeros the helper never wrote): the first offset from
    `start` that holds data (`size` when none does; `start` where the file
    system cannot tell)."""
    try:
        return max(start, os.lseek(f.fileno(), start, os.SEEK_DATA))
    except OSError as e:
        return size if e.errno == errno.ENXIO else start


def read_since(path, offset, limit=MAX_SECTION_BYTES):
    """The log's text from `offset` to its end, at most its last `limit`
    bytes (cut at a line start when cut); '' when it cannot be read."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            start = max(offset, size - limit)
            start = _first_kept(f, start, size)
            if start >= size:
                return ""
            f.seek(start)
            data = f.read(size - start)
    except OSError:
        return ""
    if start > offset:
        newline = data.find(b"\n")
        data = data[newline + 1:] if newline >= 0 else data
        data = f"[... {start - offset} bytes before these ...]\n".encode() + data
    return data.decode("utf-8", "replace")


def _size(path):
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


class ProcessPlugin:
    """`lpd_process`, and the clean-up of terminate_on_interrupt helpers."""

    def __init__(self):
        self._config = None

    @pytest.fixture(scope="session")
    def lpd_process(self, request):
        """Session-scoped handle on lpd's helper processes (pytest-xprocess's
        API: ensure, getinfo; the same object as `xprocess`)."""
        return xprocess_of(request.config)

    def pytest_configure(self, config):
        self._config = config

    def pytest_keyboard_interrupt(self, excinfo):
        if self._config is not None:
            _terminate_interruptible(self._config)

    def pytest_internalerror(self, excrepr, excinfo):
        if self._config is not None:
            _terminate_interruptible(self._config)


class HelperLogSections:
    """Adds to the report of a failed test what each helper this session
    ensured wrote to its log during that test."""

    PLUGIN_NAME = "lpd_helper_log_sections"

    def __init__(self, xprocess):
        self._xprocess = xprocess
        self._marks = {}  # name -> (log path, its size, starts) when the test started

    def pytest_runtest_logstart(self, nodeid, location):
        xprocess = self._xprocess
        self._marks = {name: (path, _size(path), xprocess.starts.get(name, 0))
                       for name, path in xprocess.log_paths.items()}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if not report.failed:
            return
        xprocess = self._xprocess
        for name in sorted(xprocess.log_paths):
            path = xprocess.log_paths[name]
            starts = xprocess.starts.get(name, 0)
            # A helper first ensured during this test: from where its log
            # stood then (0 for a start of its own).
            marked_path, offset, marked_starts = self._marks.get(
                name, (path, xprocess.first_offsets.get(name, 0), starts))
            if marked_path == path and starts == marked_starts:
                text = read_since(path, offset)
            else:  # (re)started during the test: the rest of the old log, all of the new one
                text = (read_since(marked_path, offset) if marked_path != path else "") + read_since(path, 0)
            if text:
                report.sections.append((f"{SECTION_PREFIX}{name}: {path}", text))


class XprocessPlugin:
    """pytest-xprocess's fixture and options, served by lpd."""

    def pytest_addoption(self, parser):
        group = parser.getgroup("xprocess", "managing external processes across test-runs [xprocess, by lpd]")
        group.addoption("--xkill", action="store_true", help="kill this project's helper processes (lpd)")
        group.addoption("--xshow", action="store_true", help="show this project's helper processes (lpd)")

    def pytest_cmdline_main(self, config):
        if not (config.option.xkill or config.option.xshow):
            return None
        xprocess = XProcess(config, tempfile.gettempdir(), socket_path_of(config), scope=str(config.rootpath))
        try:
            writer = _LineWriter()
            return xprocess._xkill(writer) if config.option.xkill else xprocess._xshow(writer)
        except (LpdUnavailable, LpdError) as e:
            raise pytest.UsageError(f"--xkill/--xshow: {e}") from None
        finally:
            xprocess.close()

    @pytest.fixture(scope="session")
    def xprocess(self, request):
        """Session-scoped pytest-xprocess object whose processes lpd starts,
        waits for, reuses and stops."""
        xprocess = xprocess_of(request.config)
        request.config._xprocess = xprocess  # where pytest-xprocess keeps it
        return xprocess


class _LineWriter:
    """The one method of pytest's TerminalWriter that _xkill/_xshow use."""

    @staticmethod
    def line(text):
        print(text, flush=True)
