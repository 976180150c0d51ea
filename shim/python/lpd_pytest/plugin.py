"""The plugin's hooks, fixtures and state: lpd_pytest (the package) is what
pytest registers, and it holds every name of this module (see __init__.py,
which loads it without pytest's assert rewriting).

PYTEST_DONT_REWRITE
"""

import os
import sys

import pytest

from . import messages
from .client import LpdError, LpdUnavailable
from .link import link_for
from .reporter import CONTROLLER_COLLECTS, TestReporter, shim_failed
from .live_pause import MOCK_VALUES, NOT_MOCKED, Decision, Pauses, append_failure_reason, new_pause_id
from . import process_plugin
from . import abort_env  # h15abort (issue 15): pytest-abort's environment
from . import pause_announcer  # h15term (issue 15): every pause on the terminal

__all__ = ["checkpoint", "Decision", "LpdError", "LpdUnavailable"]

_link = None  # this process's link to lpd (link.LpdLink) once pytest_configure ran
_pauses = None  # its live pauses (live_pause.Pauses)
_crash_log_writer = None  # h15abort: appends the run's crashes to $PYTEST_ABORT_CRASHED_TESTS_LOG
_reporter = None  # its per-test messages, while connected
_announcer = None  # h15term: the run's pauses on this terminal (controller / plain pytest)


def checkpoint(task="", timeout=300.0):
    """Pauses the running test until someone resumes it with
    `lpctl resume <id> --result true|false|none [--reason TEXT]`.
    Returns a Decision (result, reason). Under --pause-checkpoint-mock X it
    returns X at once with reason "Mock"."""
    if _pauses is None:
        raise RuntimeError("lpd_pytest is not active: load it with -p lpd_pytest or PYTEST_PLUGINS=lpd_pytest")
    return _pauses.checkpoint(task=task, timeout=timeout)


def pytest_addoption(parser, pluginmanager):
    process_plugin.register(pluginmanager)  # issue 14: lpd_process, and xprocess unless pytest-xprocess's is active
    group = parser.getgroup("lpd", "live pause and resume through lpd")
    group.addoption("--pause-on-failure", action="store_true", default=False,
                    help="when a test fails, pause it before teardown until `lpctl resume` (needs a running lpd)")
    group.addoption("--pause-timeout", type=float, default=300.0, metavar="SECONDS",
                    help="how long a failure pause waits before the test goes on (default 300)")
    group.addoption("--pause-checkpoint-mock", choices=sorted(MOCK_VALUES), default=None,
                    help="make checkpoint() return this at once, with reason 'Mock', without a daemon")
    group.addoption("--lpd-socket", default=None, metavar="PATH",
                    help="lpd's socket (default: $LPD_SOCKET, else the per-user default path); "
                         "write --lpd-socket=PATH: as two words pytest takes PATH for a test path "
                         "when it looks for the rootdir")
    # h15lp: pytest-live-pause's pause directory
    group.addoption("--pause-dir", default=None, metavar="DIR",
                    help="also keep the run's state in DIR/runs/<run_id>/ (run.json, events.jsonl, "
                         "pauses/<pause_id>.json) and resume pauses from command files written to its commands/ "
                         "(pytest-live-pause's layout; default under -p pytest_live_pause: /tmp/pytest-live-pause-UID)")


def pause_on_failure_wanted(config):
    """--pause-on-failure, or LPD_PAUSE_ON_FAILURE (lpd sets it for
    `lpctl run --pause-on-failure`: never an argv flag) set and not 0."""
    return bool(config.getoption("pause_on_failure")) or os.environ.get("LPD_PAUSE_ON_FAILURE", "0") not in ("", "0")


@pytest.hookimpl(trylast=True)  # after pytest's own faulthandler setup, which we replace
def pytest_configure(config):
    global _reporter
    _configure_link(config)
    _start_crash_log_writer()  # h15abort
    if pause_on_failure_wanted(config):
        config.pluginmanager.register(FailurePause(), "lpd_pytest_failure_pause")
    # Its per-test hooks only where lpd is wanted: a daemon listens, or this
    # process belongs to an lpd run (`lpctl run`, or an xdist worker of a
    # controller that joined one) even if lpd is away right now, restarting:
    # the reporter queues and joins the run when lpd is back. A replacement
    # worker xdist starts while lpd restarts would otherwise report nothing
    # for its whole life. A pytest without lpd pays nothing per test.
    if _link is not None and (_link.conn is not None or _link.run_id):
        try:
            reporter = TestReporter(_link, config)
        except Exception as e:  # the shim's own failure: the tests still run
            shim_failed("reporter", e)
            return
        _reporter = reporter
        config.pluginmanager.register(reporter, TestReporter.PLUGIN_NAME)
    _keep_pause_dir_on_reconnect()


def _keep_pause_dir_on_reconnect():
    """h15lp: a link that reconnects (lpd restarted) asks for its pause
    directory again, after the channel set the new connection up."""
    link = _link
    mirror = getattr(link, "pause_dir_mirror", None)
    if mirror is None:
        return

    def connected(conn):
        try:
            mirror.attach(conn, link.run_id)
        except LpdError as e:
            shim_failed("--pause-dir", e)

    link.when_joined(connected)


def _configure_link(config):
    """This process's link to lpd (link_for) and its pauses; connects when
    lpd is wanted or there. An xdist worker connects only to join the run
    its controller named."""
    global _link, _pauses
    link = _link = link_for(config)
    _pauses = Pauses(link, MOCK_VALUES.get(config.getoption("pause_checkpoint_mock"), NOT_MOCKED),
                     ended=_pause_ended)
    if getattr(config, "workerinput", None) is not None:
        if link.run_id:
            link.try_connect()
        return

    pause_flag = config.getoption("pause_on_failure")
    pause_dir, pause_dir_given = _pause_dir_wanted(config)  # h15lp
    wants_daemon = pause_on_failure_wanted(config) or config.getoption("lpd_socket") or link.run_id or pause_dir_given
    if wants_daemon:
        try:
            link.connect()
        except (LpdUnavailable, LpdError) as e:
            if pause_flag or pause_dir_given:
                raise pytest.UsageError(f"{'--pause-on-failure' if pause_flag else '--pause-dir'} needs lpd: {e}") from None
            if link.refused is not None:  # lpd said no: not a restart, nothing is kept for it
                e = f"{e}; this process's results are not sent to lpd"
            elif link.run_id:  # an lpd run: lpd is restarting, most likely
                e = f"{e}; results are kept and sent to run {link.run_id} when lpd is back"
            config.issue_config_time_warning(pytest.PytestConfigWarning(f"lpd_pytest: {e}"), stacklevel=2)
    elif os.path.exists(link.socket_path):
        link.try_connect()
    if pause_dir is not None and link.conn is not None:
        _attach_pause_dir(config, link, pause_dir, pause_dir_given)


def _pause_dir_wanted(config):
    """h15lp: (DIR, given with --pause-dir) or (None, False)."""
    import sys
    compat_name_used = "pytest_live_pause" in sys.modules  # before the import below adds it
    try:
        from pytest_live_pause import pause_dir as live_pause_dir  # here: that package imports this one
    except ImportError:  # lpd_pytest alone (installed without its compat package)
        if config.getoption("pause_dir", None):
            raise pytest.UsageError("--pause-dir needs the pytest_live_pause package beside lpd_pytest") from None
        return None, False
    return live_pause_dir.wanted(config, compat_name_used)


def _attach_pause_dir(config, link, pause_dir, given):
    """h15lp: lpd keeps the run in DIR/runs/<run_id>/ (link.pause_dir_mirror).
    A directory lpd refuses (a link, another user's) is a usage error when
    --pause-dir named it, a warning for the default one."""
    from pytest_live_pause import pause_dir as live_pause_dir
    mirror = live_pause_dir.Mirror(pause_dir, given)
    try:
        mirror.attach(link.conn, link.run_id)
    except LpdError as e:
        if given:
            raise pytest.UsageError(e.message) from None
        # One line at once, not a Python warning: a `filterwarnings = error`
        # suite must not end in INTERNALERROR because another user planted
        # something at the default path.
        sys.stderr.write(f"lpd_pytest: warning: {e.message}; this run's pauses get no files there "
                         f"(give --pause-dir DIR to choose another directory)\n")
        sys.stderr.flush()
        return
    link.pause_dir_mirror = mirror


@pytest.hookimpl(trylast=True)  # last: after pytest's faulthandler and every plugin are done
def pytest_unconfigure(config):
    global _link, _pauses, _reporter
    _stop_announcer()  # h15term: a session that never finished (usage error) too
    link, reporter = _link, _reporter
    _link = _pauses = _reporter = None
    try:
        if reporter is not None:
            reporter.finish()  # the exit marker, and everything still undelivered
        _finish_crash_log_writer()  # h15abort: lpd has every message now
        if link is not None:
            link.close(clean=True)
        if reporter is not None:
            reporter.close()
    except Exception as e:
        shim_failed("the end", e)
    if reporter is not None:
        reporter.after_close()


def pytest_sessionstart(session):
    # Printed even under -q: whoever resumes pauses needs the run id.
    if _link is None or _link.conn is None or _link.worker_id:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    # LPD_RUN_BANNER=0: lpd's HTTP job API, whose job text is pytest's own
    # output as pytest-relay-run gives it (the job already has its id).
    if reporter is not None and os.environ.get("LPD_RUN_BANNER", "1") != "0":
        reporter.write_line(f"lpd: run_id {_link.run_id} (socket {_link.socket_path})")
        mirror = getattr(_link, "pause_dir_mirror", None)
        if mirror is not None:  # h15lp: pytest-live-pause's header line
            reporter.write_line(mirror.header(_link.run_id))
            reporter.flush()  # now, also into a pipe: a script reads the run id from it to watch the run
    _start_announcer(reporter)


# -- h15abort (issue 15): pytest-abort's environment ------------------------
def _start_crash_log_writer():
    """PYTEST_ABORT_CRASHED_TESTS_LOG for a plain pytest (abort_env.py)."""
    global _crash_log_writer
    try:
        _crash_log_writer = abort_env.start(_link)
    except Exception as e:  # the shim's own failure: the tests still run
        shim_failed("crash log writer", e)


def _finish_crash_log_writer():
    global _crash_log_writer
    writer, _crash_log_writer = _crash_log_writer, None
    if writer is not None:
        writer.finish()
# -- end h15abort -------------------------------------------------------------


# -- h15term (issue 15): pause lines on the terminal ------------------------
def _start_announcer(reporter):
    global _announcer
    if _announcer is not None or not pause_announcer.wanted(_link, reporter):
        return
    try:
        announcer = pause_announcer.PauseAnnouncer(_link.socket_path, _link.run_id, reporter)
        announcer.start()
    except Exception as e:  # the shim's own failure: the tests still run
        shim_failed("pause announcer", e)
        return
    _announcer = announcer


def _pause_ended(pause_id):
    """A pause of this process ended: its line on the terminal first."""
    announcer = _announcer
    if announcer is not None:
        announcer.wait_end_shown(pause_id)


def _stop_announcer():
    global _announcer
    announcer, _announcer = _announcer, None
    if announcer is not None:
        try:
            announcer.stop()
        except Exception as e:
            shim_failed("pause announcer", e)


@pytest.hookimpl(tryfirst=True)  # before the terminal summary: no pause line inside it
def pytest_sessionfinish(session):
    _stop_announcer()
    # An xdist worker whose results did not all reach lpd (lpd refused its
    # connection, or was away to the end) says so to its controller, in the
    # workeroutput xdist sends after this hook: the controller then sends
    # lpd its own copy (pytest_testnodedown), and no test that ran is
    # reported as never run.
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and _reporter is not None:
        try:
            if _reporter.channel.undelivered():
                # Why, for the controller to print: a worker's own warnings
                # never reach the terminal.
                workeroutput[UNSENT_RESULTS] = getattr(_link, "last_error", None) or "lpd was away"
        except Exception as e:
            shim_failed("worker output", e)
# -- end h15term -------------------------------------------------------------


# The workeroutput key of an xdist worker some of whose results did not reach lpd.
UNSENT_RESULTS = "lpd_unsent_results"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist controller: tell each worker which run to join."""
    if _link is not None and _link.run_id:
        node.workerinput["lpd_run_id"] = _link.run_id
        node.workerinput["lpd_socket"] = _link.socket_path
        if _reporter is not None:
            node.workerinput[CONTROLLER_COLLECTS] = True


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """xdist controller: a worker finished collecting; lpd hears the run's
    collected nodeids from here, once (TestReporter.worker_collected)."""
    if _reporter is None:
        return
    try:
        _reporter.worker_collected(ids)
    except Exception as e:
        shim_failed("collection.items", e)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist controller: a worker went down. Only its parent (us) can learn
    how it ended, so reap it and tell lpd, which pins any crash on the test
    that worker was running."""
    if _reporter is None:
        return
    if error is None:
        # Ended cleanly; but its own results may not all have reached lpd.
        why = (getattr(node, "workeroutput", None) or {}).get(UNSENT_RESULTS)
        if why:
            worker_id = getattr(getattr(node, "gateway", None), "id", "")
            try:
                _reporter.worker_unsent(worker_id)
            except Exception as e:
                shim_failed("worker.results", e)
            else:
                # Said once per worker, where the user sees it (the
                # controller's stderr): lpd's reason, and that nothing is lost.
                sys.stderr.write(f"lpd_pytest: worker {worker_id} could not report its own results ({why}); "
                                 f"the controller sent them to lpd instead\n")
        return
    try:
        popen = getattr(getattr(getattr(node, "gateway", None), "_io", None), "popen", None)
        if popen is None:
            return
        try:
            returncode = popen.wait(timeout=30)
        except Exception:
            return
        _reporter.worker_down(getattr(node.gateway, "id", ""), popen.pid, returncode)
    except Exception as e:
        shim_failed("worker.down", e)


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem, report, sched):
    """xdist controller: the test a dead worker was running (called right
    after pytest_testnodedown)."""
    if _reporter is None:
        return
    try:
        worker_id = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", "")
        _reporter.worker_crashed(worker_id, crashitem)
    except Exception as e:
        shim_failed("worker.crashed", e)


# Files lpd writes in the run's directory for a retry (crashed tests left
# out) or an isolated rerun (only these tests): one nodeid a line.
DESELECT_FILE_ENV = "LPD_DESELECT_FILE"
ONLY_NODEIDS_FILE_ENV = "LPD_ONLY_NODEIDS_FILE"
MAX_NODEIDS_FILE_BYTES = 16 * 1024 * 1024


def read_nodeids_file(path):
    """The nodeids listed in `path`, one a line; reads at most
    MAX_NODEIDS_FILE_BYTES (a longer file is an error: a cut list would
    select the wrong tests)."""
    with open(path, "rb") as f:
        data = f.read(MAX_NODEIDS_FILE_BYTES + 1)
    if len(data) > MAX_NODEIDS_FILE_BYTES:
        raise pytest.UsageError(f"lpd_pytest: {path} is over {MAX_NODEIDS_FILE_BYTES} bytes")
    return {line for line in data.decode("utf-8", "surrogateescape").splitlines() if line}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    """LPD_DESELECT_FILE: leaves those tests out; LPD_ONLY_NODEIDS_FILE: runs
    only those. Exact nodeids; the tests left out are reported the pytest way
    (pytest_deselected: "N deselected")."""
    deselect_path = os.environ.get(DESELECT_FILE_ENV)
    only_path = os.environ.get(ONLY_NODEIDS_FILE_ENV)
    if not deselect_path and not only_path:
        return
    try:
        deselect = read_nodeids_file(deselect_path) if deselect_path else set()
        only = read_nodeids_file(only_path) if only_path else None
    except OSError as e:
        raise pytest.UsageError(f"lpd_pytest: cannot read the nodeids lpd listed: {e}") from None
    kept, dropped = [], []
    for item in items:
        nodeid = messages.wire_nodeid(item.nodeid)  # lpd lists them as it keeps them
        if nodeid in deselect or (only is not None and nodeid not in only):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


class FailurePause:
    """--pause-on-failure: pauses a failed test before its teardown. A
    plugin of its own, registered only with the option, so that runs without
    it do not pay for a hook wrapped around every test phase."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        if outcome.excinfo is not None:
            return
        report = outcome.get_result()
        if _link is None or report.when != "call" or not report.failed or _link.conn is None:
            return
        try:
            self._pause(item, report)
        except Exception as e:  # KeyboardInterrupt (lpctl stop while paused) goes on up
            shim_failed("failure pause", e)

    @staticmethod
    def _pause(item, report):
        if _reporter is not None:
            # The test failed: so it is reported even if it is stopped
            # while paused (never as passed, nor merely interrupted).
            _reporter.keep(report)
        reprcrash = getattr(report.longrepr, "reprcrash", None)
        original = reprcrash.message if reprcrash is not None else str(report.longrepr)[-2000:]
        pause_id = new_pause_id()
        reporter = item.config.pluginmanager.get_plugin("terminalreporter")
        # h15term: lpd's own announcement of this pause (with the exact resume
        # command) reaches the terminal through the announcer, or `lpctl run`.
        announced = _announcer is not None or os.environ.get(pause_announcer.ATTEMPT_ENV)
        if reporter is not None and not announced:
            reporter.write_line(f"lpd: {item.nodeid} failed; paused before teardown (run {_link.run_id}). "
                                f"Resume with: lpctl resume {pause_id} [--failure-reason TEXT]")
        try:
            result = _pauses.pause("failure", item.nodeid, item.config.getoption("pause_timeout"),
                                 original_failure=original, pause_id=pause_id)
        except LpdError as e:
            # Said right under the line above: the test was not paused after all.
            if reporter is not None:
                reporter.write_line(f"lpd: {item.nodeid} was not paused: {e}")
            raise
        reason = result.get("failure_reason")
        if result.get("status") == "resumed" and reason:
            append_failure_reason(report, reason)
            if _reporter is not None:
                _reporter.failure_reason = reason


class LivePause:
    """The `live_pause` fixture: the run id and checkpoint() for this test."""

    def __init__(self, pauses):
        self._pauses = pauses

    @property
    def run_id(self):
        return self._pauses.link.run_id

    def checkpoint(self, task="", timeout=300.0):
        return self._pauses.checkpoint(task=task, timeout=timeout)


@pytest.fixture
def live_pause():
    if _pauses is None:
        pytest.skip("lpd_pytest is not active")
    return LivePause(_pauses)


@pytest.fixture
def pause_run_id():
    return _link.run_id if _link is not None else None
