"""Per-test messages for crash attribution and lpd's JUnit: test.start
before a test's setup, test.phase as it enters call and teardown, test.finish
after its teardown (with pytest's own failure text for anything but a pass),
plus the session's own messages (collection items and errors, errors in
session start and finish, the exit marker); a crash's traceback goes to lpd
on a connection of its own (crash_traceback.py).

The hooks only decide what to say: every one-way message goes through the
channel (channel.py), which writes it into an event ring that lpd reads,
keeps it there or in a replay queue while lpd is away, and reconnects. A
test that passed costs a few microseconds: the C writer formats and writes
each record. Nothing here raises into pytest: a failure of the shim is a warning
on stderr, and the run goes on."""

import sys
import time
import traceback

import pytest

from . import junit_fields, messages
from .client import LpdUnavailable
from .link import RunRefused
from .channel import Channel
from .crash_traceback import CrashTraceback
from .sigterm import SigtermGuard, TerminatedBySignal

_perf_counter = time.perf_counter
_quote = messages.quote_nodeid

_warned = set()


def shim_failed(where, error):
    """A failure of the shim itself: one line on the real stderr (not a
    Python warning, which -W error would turn into an exception), once per
    place; never raises."""
    if where in _warned:
        return
    _warned.add(where)
    try:
        stream = sys.__stderr__ or sys.stderr
        stream.write(f"lpd_pytest: warning: {where}: {type(error).__name__}: {error} "
                     "(the tests go on; lpd may miss some of this process's results)\n")
        stream.flush()
    except Exception:
        pass


def describe_interruption(error):
    if isinstance(error, TerminatedBySignal):
        return "interrupted by SIGTERM"
    if isinstance(error, pytest.exit.Exception):
        return f"Exit: {error.msg}"
    return "KeyboardInterrupt"


def exception_text(excinfo):
    try:
        return "".join(traceback.format_exception(excinfo[0], excinfo[1], excinfo[2]))
    except Exception:
        return repr(excinfo[1])


def short_collection_error(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message
    lines = [line for line in str(report.longrepr).splitlines() if line.strip()]
    return lines[-1] if lines else "collection failure"


# workerinput key: the controller sends lpd the collected nodeids for its
# workers (TestReporter.worker_collected), so they send none.
CONTROLLER_COLLECTS = "lpd_controller_collects"


class WorkerCopy:
    """xdist controller: its copy of one worker's results (what lpd gets if
    the worker dies while lpd is away). `tests`: {nodeid: duration} for a
    test that only passed, else [outcome, phase, message, duration,
    failure text]; `running`: the nodeid whose setup was reported and whose
    teardown was not yet (None between tests)."""

    __slots__ = ("tests", "running")

    def __init__(self):
        self.tests = {}
        self.running = None


class TestReporter:
    """Also the pytest plugin (registered as PLUGIN_NAME) whose hooks send
    the per-test and session messages through its channel. `link` is this
    process's link.LpdLink, connected or (lpd restarting) not yet; None
    makes a reporter with a channel and no link, for tests."""

    PLUGIN_NAME = "lpd_pytest_reporter"
    __test__ = False  # not a test class, whatever its name

    def __init__(self, link, config=None):
        self.link = link
        self.config = config
        self.junit_prefix = getattr(getattr(config, "option", None), "junitprefix", None)
        self.crash_traceback = CrashTraceback(link.socket_path if link is not None else None, shim_failed)
        # The test running here: set between its test.start and its
        # test.finish (the SIGTERM guard reads `started`).
        self.started = None
        self.quoted = None
        self.phase = None
        self.outcome_report = None  # the report that decides a non-passing outcome
        self.reruns = 0
        self.failure_reason = None
        # xdist controller: what each worker reported, by worker id, so that
        # a worker dying while lpd was away (its unsent results die with it)
        # loses nothing: see worker_down.
        self.worker_results = {}  # worker id -> WorkerCopy
        self.worker_results_by_node = {}  # xdist's WorkerController -> its WorkerCopy in worker_results
        self.down_workers = {}  # worker id -> (pid, returncode) of a worker that died
        # xdist: the controller sends the run's collected nodeids (see
        # worker_collected); a worker its controller said so of sends none.
        workerinput = getattr(config, "workerinput", None) or {}
        self.controller_collects = bool(workerinput.get(CONTROLLER_COLLECTS))
        self.sent_collection = None
        self.sigterm = SigtermGuard(lambda: self.started is not None)
        # Set up on the link's connection at once if there is one; else lpd
        # is away (restarting) and the channel joins the run on the first
        # message after it is back.
        self.channel = Channel(link, on_connect=self.crash_traceback.attach, on_lost=self.crash_traceback.lost)
        if link is not None:
            try:
                self.sigterm.install()
            except (ValueError, OSError) as e:
                shim_failed("SIGTERM handler", e)

    # -- per-test hooks -----------------------------------------------------
    # Run around every test of a suite that may have many thousands of tiny
    # ones: kept to a few attribute reads and one channel call per message.
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        try:
            quoted = self.quoted = _quote(item.nodeid)
            self.outcome_report = None
            self.reruns = 0
            self.failure_reason = None
            self.phase = "setup"
            self.channel.test_start(quoted)
            self.started = started = _perf_counter()
        except Exception as e:
            shim_failed("test.start", e)
            quoted = started = None
        outcome = yield
        self.started = None  # a SIGTERM from here on is not "in a test"
        if started is None:
            return
        try:
            duration = _perf_counter() - started
            if self.outcome_report is None and not self.reruns and outcome.excinfo is None:
                self.channel.test_passed(quoted, duration)
            else:
                self.channel.send(self._finish_line(item, duration, outcome.excinfo))
        except Exception as e:
            shim_failed("test.finish", e)
        finally:
            self.outcome_report = None
            self.quoted = None

    def _enter(self, phase):
        """The running test enters `phase` (a rerun's setup)."""
        self.phase = phase
        self.channel.test_phase(self.quoted, phase)

    # The two phases every test enters: _enter's lines in place (a call
    # less per phase, on the per-test path).
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item):
        self.phase = "call"
        try:
            self.channel.test_phase(self.quoted, "call")
        except Exception as e:
            shim_failed("test.phase", e)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item, nextitem):
        self.phase = "teardown"
        try:
            self.channel.test_phase(self.quoted, "teardown")
        except Exception as e:
            shim_failed("test.phase", e)

    def _finish_line(self, item, duration, excinfo):
        """The full test.finish of a test that did not simply pass."""
        report = self.outcome_report
        wasxfail = None
        if report is not None and (report.failed or excinfo is None):
            # What it did decides, even if it was interrupted afterwards
            # (paused on its failure, then stopped).
            outcome, phase, message, longrepr, wasxfail = junit_fields.report_fields(report)
            location = report.location
        elif excinfo is not None:
            error = excinfo[1]
            if isinstance(error, (KeyboardInterrupt, pytest.exit.Exception)):
                outcome, message = "interrupted", describe_interruption(error)
            else:  # out of pytest's own machinery, not the test: still not a pass
                outcome, message = "error", f"internal error: {type(error).__name__}: {error}"
            phase, longrepr, location = self.phase, exception_text(excinfo), item.location
        else:  # passed after pytest-rerunfailures reruns
            outcome, phase, message, longrepr, location = "passed", "call", "", "", item.location
        file, line = junit_fields.location_fields(location)
        classname, name = junit_fields.testcase_names(item.nodeid, self.junit_prefix)
        return messages.encode(messages.test_finish(
            item.nodeid, outcome, duration, junit_fields.cut_message(message), phase,
            longrepr=junit_fields.cut_longrepr(longrepr), file=file, line=line, classname=classname, name=name,
            reruns=self.reruns, failure_reason=self.failure_reason, wasxfail=wasxfail,
            system_out=junit_fields.system_out(report)))  # x14py (issue 14): helper log lines

    def pytest_runtest_logreport(self, report):
        # Passed phases say nothing the finish message would not. An xdist
        # controller also sees its workers' reports: not ours to send, but
        # kept (track_worker_report).
        if self.started is None and getattr(report, "node", None) is not None:
            try:
                self.track_worker_report(report)
            except Exception as e:
                shim_failed("worker report", e)
            return
        if report.passed or self.started is None:
            return
        try:
            if report.outcome == "rerun":
                # pytest-rerunfailures runs the test again: what this run
                # did is not the outcome; only the count is.
                self.reruns += 1
                self.outcome_report = None
                self.failure_reason = None
                self._enter("setup")
                return
            self.keep(report)
        except Exception as e:
            shim_failed("test report", e)

    def keep(self, report):
        """Keeps the report that decides a test's outcome: the first failed
        one, else the first skipped one."""
        kept = self.outcome_report
        if kept is None or (report.failed and not kept.failed):
            self.outcome_report = report

    # -- session hooks ------------------------------------------------------
    # Innermost wrappers (trylast): an outer wrapper that re-raises the hook's
    # exception (the terminal reporter's does) ends the hook call before the
    # wrappers outside it see anything.
    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_sessionstart(self, session):
        # Before every plugin's and conftest's sessionstart (wrappers come
        # first): a crash in one of them is the session's, not collection's.
        try:
            self.channel.send(messages.encode(messages.test_phase("", "sessionstart")))
        except Exception as e:
            shim_failed("sessionstart", e)
        outcome = yield
        self._session_hook_failed("sessionstart", outcome.excinfo)

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        outcome = yield
        self._session_hook_failed("sessionfinish", outcome.excinfo)

    def _session_hook_failed(self, phase, excinfo, nodeid=""):
        if excinfo is None or isinstance(excinfo[1], (KeyboardInterrupt, pytest.exit.Exception)):
            return
        try:
            self.session_error(phase, nodeid, f"{type(excinfo[1]).__name__}: {excinfo[1]}", exception_text(excinfo))
        except Exception as e:
            shim_failed(phase, e)

    def session_error(self, phase, nodeid, message, longrepr):
        self.channel.send(messages.encode(messages.session_error(
            phase, nodeid, junit_fields.cut_message(message), junit_fields.cut_longrepr(longrepr))))

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_collection(self, session):
        # An xdist controller collects nothing itself (its workers do).
        collects = not session.config.pluginmanager.has_plugin("dsession")
        if collects:
            try:
                self.channel.send(messages.encode(messages.test_phase("", "collection")))
            except Exception as e:
                shim_failed("collection", e)
        outcome = yield
        if collects:
            self._session_hook_failed("collection", outcome.excinfo)

    def pytest_collectreport(self, report):
        # An xdist controller hears each worker's collection errors once
        # (xdist de-duplicates them); the workers' own would repeat them.
        if not report.failed or self.link.worker_id:
            return
        try:
            self.session_error("collection", report.nodeid, short_collection_error(report), str(report.longrepr))
        except Exception as e:
            shim_failed("collection error", e)

    def pytest_collection_finish(self, session):
        try:
            if not self.controller_collects:
                for line in messages.collection_item_chunks([item.nodeid for item in session.items]):
                    self.channel.send(line)
            if not self.link.worker_id:
                self.channel.send(messages.encode({"op": "collection.finish", "count": len(session.items)}))
        except Exception as e:
            shim_failed("collection.items", e)

    def worker_collected(self, ids):
        """xdist controller: a worker's collected nodeids (`ids`, in its
        order). lpd needs the run's once (to list the tests that never ran);
        every worker collects the same ones (xdist stops the run otherwise),
        so the first list goes to lpd and a later one only if it differs
        (lpd keeps each nodeid once): one list, not one per worker."""
        if self.sent_collection is not None and ids == self.sent_collection:
            return
        for line in messages.collection_item_chunks(ids):
            self.channel.send(line)
        if self.sent_collection is None:
            self.sent_collection = list(ids)

    def track_worker_report(self, report):
        """xdist controller: the outcome of each test a worker reported, as
        the worker's own shim sent it (outcome, phase, message, duration,
        and the last 4000 characters of the failure text). Runs for every
        phase of every test: a passed phase costs a dict lookup and an add
        (a test that only passed is kept as its duration, a float)."""
        copy = self.worker_results_by_node.get(report.node)
        if copy is None:
            worker = getattr(getattr(report.node, "gateway", None), "id", None)
            if worker is None:
                return
            copy = self.worker_results_by_node[report.node] = self.worker_results.setdefault(worker, WorkerCopy())
        tests = copy.tests
        nodeid = report.nodeid
        outcome = report.outcome
        # A test is over at its teardown report (pytest reports one even
        # after a failed setup); until then it is the worker's running test,
        # whose passed setup must not read as a passed test if it dies.
        when = report.when
        if when == "setup":
            copy.running = nodeid
        elif when == "teardown":
            copy.running = None
        if outcome == "passed":
            entry = tests.get(nodeid, 0.0)
            if entry.__class__ is float:
                tests[nodeid] = entry + (getattr(report, "duration", 0.0) or 0.0)
            else:
                entry[3] += getattr(report, "duration", 0.0) or 0.0
            return
        if when not in ("setup", "call", "teardown"):
            return  # xdist's own "crashed while running" report: lpd records the crash
        if outcome == "rerun":
            tests.pop(nodeid, None)
            return
        entry = tests.get(nodeid, 0.0)
        if entry.__class__ is float:
            entry = tests[nodeid] = ["passed", "call", "", entry, ""]
        entry[3] += getattr(report, "duration", 0.0) or 0.0
        if report.failed or report.skipped:
            if entry[0] == "passed" or (report.failed and entry[0] == "skipped"):
                fields = junit_fields.report_fields(report)
                entry[0], entry[1], entry[2], entry[4] = fields[0], fields[1], fields[2], fields[3][-4000:]

    def worker_down(self, worker_id, pid, returncode):
        # A worker that died may have died while lpd was away, its last
        # results unsent: the controller's copy goes first (lpd keeps only
        # those it lacks), then how it ended.
        self.worker_unsent(worker_id)
        self.down_workers[worker_id] = (pid, returncode)
        self.channel.send(messages.encode({"op": "worker.down", "worker_id": worker_id, "pid": pid,
                                    "returncode": returncode}))

    def worker_unsent(self, worker_id):
        """xdist controller: the controller's copy of a worker's results goes
        to lpd (which keeps only what it lacks): the worker died, or ended
        cleanly saying some of its results never reached lpd (refused, or
        lpd away to its end)."""
        copy = self.worker_results.pop(worker_id, None)
        if copy is None:
            return
        self.worker_results_by_node = {node: kept for node, kept in self.worker_results_by_node.items()
                                       if kept is not copy}
        # The test it was running never finished: not a result (lpd pins
        # the crash on it, or xdist names it in pytest_handlecrashitem).
        if copy.running is not None:
            copy.tests.pop(copy.running, None)
        for line in messages.worker_results_chunks(worker_id, copy.tests):
            self.channel.send(line)

    def worker_crashed(self, worker_id, nodeid):
        """xdist named the test a dead worker was running (pytest_handlecrashitem):
        lpd pins the crash there unless it already did (it saw the worker)."""
        pid, returncode = self.down_workers.get(worker_id, (0, None))
        self.channel.send(messages.encode({"op": "worker.crashed", "worker_id": worker_id, "pid": pid,
                                    "returncode": returncode, "nodeid": messages.wire_nodeid(nodeid)}))

    # -- the end ------------------------------------------------------------
    def finish(self):
        """At the very end of pytest_unconfigure, before run.end: the exit
        marker, then everything still undelivered (waiting a bounded time
        for an lpd that is away)."""
        self.channel.send(messages.encode(messages.test_phase("", "exit")))
        if not self.channel.flush():
            if getattr(self.link, "refused", None) is not None:
                shim_failed("the end", RunRefused(self.link.refused + "; none of this process's results reached lpd"))
            else:
                shim_failed("the end", LpdUnavailable(self.link.socket_path, "lpd did not come back in time; "
                                                      "its results of this process are incomplete"))

    def close(self):
        """After run.end: lets go of the ring; keeps the traceback connection
        (and faulthandler on it) until the process ends, for a crash at exit."""
        self.channel.close()
        self.sigterm.uninstall()
        self.crash_traceback.keep_for_exit()

    def after_close(self):
        """Last of all: a SIGTERM taken during a test ends the process now."""
        self.sigterm.finish()
