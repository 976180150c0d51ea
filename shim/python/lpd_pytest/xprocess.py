"""pytest-xprocess's API with lpd doing the work: `XProcess` (what the
`xprocess` and `lpd_process` fixtures give), `XProcessInfo` and
`ProcessStarter`, with pytest-xprocess 1.0's semantics (its
xprocess/xprocess.py and its tests/ define them) and these differences:

- lpd starts the process in its own session, reads its log as it grows and
  answers when the pattern matches (no 0.1 s sleep loop); an exit before
  that is reported at once (RuntimeError) instead of after the timeout.
- Helpers are keyed by the project (pytest's rootdir) as pytest-xprocess's
  per-project cache directory keys them; `ensure(..., shared=True)` holds
  a lease on the helper for this session's connection: lpd stops it after
  its last holder is gone, and a holder's terminate() never kills it under
  another holder (pytest-xprocess#144).
- popen_kwargs: see POPEN_KWARGS_* below for what is honoured and why.

PYTEST_DONT_REWRITE (no asserts of the user's here: rewriting would only
cost, and warn when the module was imported before pytest marked it)."""

import abc
import fcntl
import os
import re
import select
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time

from .client import Connection, LpdError, LpdUnavailable, default_socket_path

try:
    import py

    def as_path(path):
        """pytest-xprocess gives py.path.local objects (its rootdir is one)."""
        return py.path.local(path)
except ImportError:  # pragma: no cover - pytest 7 ships py.path
    import pathlib

    def as_path(path):
        return pathlib.Path(path)

RUNNING_STATES = ("starting", "ready", "stopping")
# How often a starter's startup_check() is asked again: it is the starter's
# own probe, with no event to wait for (pytest-xprocess asks every 0.1 s).
STARTUP_CHECK_INTERVAL = 0.02
# A reply to proc.kill comes once the process is gone; beyond the grace and
# the SIGKILL wait (pytest-xprocess waits `timeout` after each signal) this
# much is allowed for lpd itself.
KILL_REPLY_MARGIN = 30.0

# Python's flags that have an inline form in lpd's (Perl) syntax.
_INLINE_FLAGS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.VERBOSE, "x"))

# popen_kwargs pytest-xprocess passes to Popen, under lpd:
# honoured: the child gets them.
POPEN_KWARGS_HONOURED = ("cwd", "env", "shell", "umask")
# about the pipes or handle in the parent, which has none here (the
# output goes to lpd's log), or what lpd always does (its own session,
# descriptors closed, signals restored): accepted, nothing to do.
POPEN_KWARGS_WITHOUT_EFFECT = ("universal_newlines", "text", "encoding", "errors", "bufsize",
                               "start_new_session", "process_group", "startupinfo", "creationflags")
# what lpd cannot do for a process it spawns itself, refused with the reason.
POPEN_KWARGS_REFUSED = {
    "stdin": "lpd gives the process /dev/null as its input",
    "stdout": "lpd writes the output to its own log, which the pattern is matched against",
    "stderr": "lpd writes the output to its own log, which the pattern is matched against",
    "preexec_fn": "it would run in the test process, which does not spawn the helper (lpd does)",
    "pass_fds": "descriptors of the test process do not reach a process lpd spawns",
    "executable": "lpd runs argv[0] looked up in the PATH of the environment",
    "user": "lpd runs the helper as the user who asks",
    "group": "lpd runs the helper as the user who asks",
    "extra_groups": "lpd runs the helper as the user who asks",
}


class ProcessStarter(abc.ABC):
    """pytest-xprocess 1.0's ProcessStarter, for projects without it: set
    `args` and `pattern` (a str or compiled regex) and/or override
    startup_check(). Starters subclassing xprocess's own class work the same."""

    env = None
    timeout = 120
    popen_kwargs = {}
    max_read_lines = 50
    terminate_on_interrupt = False

    def __init__(self, control_dir, process):
        self.control_dir = control_dir
        self.process = process

    @property
    @abc.abstractmethod
    def args(self):
        """The args to start the process."""

    @property
    def pattern(self):
        """The pattern a log line matches once the process has started."""
        return None

    def startup_check(self):
        """Asked after the pattern matched (or at once without one) until it
        returns true, within what is left of `timeout`."""
        return True


def pattern_text(pattern):
    """The pattern as lpd takes it: text, with a compiled regex's flags as
    inline flags ((?i) for re.IGNORECASE ...). None stays None. Raises
    ValueError for re.ASCII/re.LOCALE, which lpd's engine has no form of."""
    if pattern is None or type(pattern) is str:  # h14ensure: the common case, at once
        return pattern
    flags = 0
    if isinstance(pattern, re.Pattern):
        flags, pattern = pattern.flags, pattern.pattern
    if isinstance(pattern, bytes):
        pattern = pattern.decode("utf-8")
    if not isinstance(pattern, str):
        raise TypeError(f"a starter's pattern must be a str or a compiled regex, not {type(pattern).__name__}")
    if flags & (re.ASCII | re.LOCALE):
        raise ValueError(f"pattern {pattern!r}: re.ASCII and re.LOCALE have no equivalent in lpd's matcher")
    inline = "".join(letter for flag, letter in _INLINE_FLAGS if flags & flag)
    return f"(?{inline}){pattern}" if inline else pattern


def startup_check_of(starter):
    """The starter's own startup_check, or None when it keeps the default
    (pytest-xprocess's rule: a callback counts only when overridden)."""
    check = getattr(type(starter), "startup_check", None)
    if check is None or getattr(check, "__qualname__", "") == "ProcessStarter.startup_check":
        return None
    return starter.startup_check


def child_fields(starter, controldir, with_env=True):
    """argv, cwd and env for proc.ensure from the starter's args, env and
    popen_kwargs, as pytest-xprocess's Popen(args, cwd=controldir,
    env=starter.env, **popen_kwargs) would run it. Raises ValueError for a
    popen_kwarg lpd cannot honour, naming why. with_env=False: env is None
    (h14ensure: a reuse needs no environment, and copying it costs)."""
    kwargs = dict(getattr(starter, "popen_kwargs", None) or {})
    for key in kwargs:
        if key in POPEN_KWARGS_REFUSED:
            raise ValueError(f"popen_kwargs[{key!r}] cannot be honoured under lpd: {POPEN_KWARGS_REFUSED[key]}")
        if key not in POPEN_KWARGS_HONOURED and key not in POPEN_KWARGS_WITHOUT_EFFECT \
                and key not in ("close_fds", "restore_signals"):
            raise ValueError(f"popen_kwargs[{key!r}] is not supported by lpd")
    if kwargs.get("close_fds", True) is False or kwargs.get("restore_signals", True) is False:
        raise ValueError("popen_kwargs close_fds=False / restore_signals=False: lpd always closes other "
                         "descriptors and restores signal dispositions in the helper")
    args = starter.args
    if kwargs.get("shell"):
        # Popen(shell=True): the first item is the command line, the rest its $0, $1 ...
        items = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
        argv = ["/bin/sh", "-c"] + [os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else str(a) for a in items]
    else:
        argv = [os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else str(a) for a in args]
    if kwargs.get("umask", -1) not in (-1, None):
        argv = ["/bin/sh", "-c", 'umask "$0" && exec "$@"', format(int(kwargs["umask"]), "04o")] + argv
    cwd = kwargs.get("cwd")
    cwd = os.path.abspath(os.fsdecode(cwd)) if cwd is not None else str(controldir)
    if not with_env:
        return argv, cwd, None
    env = kwargs["env"] if kwargs.get("env") is not None else getattr(starter, "env", None)
    # Like Popen(env=None): the test process's environment; else env replaces it.
    env = dict(os.environ) if env is None else {os.fsdecode(k): os.fsdecode(v) for k, v in env.items()}
    return argv, cwd, env


def _ended(pidfd):
    """Whether the process of `pidfd` has ended (readable), without
    waiting; poll, not select: a descriptor may be above FD_SETSIZE."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


def _own_cwds():
    """h14fixC: the working directories of this user's processes (those
    /proc lets this process read)."""
    cwds = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cwds.add(os.readlink(f"/proc/{entry}/cwd"))
            except OSError:
                pass
    return cwds


class _Log:
    """pytest-xprocess's starters may call self.process.log.debug()."""

    def debug(self, msg, *args):
        pass


class XProcessResources:
    """What pytest-xprocess keeps per ensure (xprocess.resources): the info
    and its terminate_on_interrupt. `popen` is None: lpd spawned the
    process, the test process has no Popen object of it."""

    def __init__(self, info, terminate_on_interrupt):
        self.info = (info, terminate_on_interrupt)
        self.popen = None
        self.fhandles = []

    def release(self):
        pass


class XProcessInfo:
    """getinfo(name): `pid` and `logpath` as lpd knows them now (None when
    lpd knows no such helper in this project), `controldir`, isrunning(),
    terminate()."""

    def __init__(self, xprocess, name, record=None, controldir=None):
        self._xprocess = xprocess
        self.name = name
        self.controldir = controldir if controldir is not None else xprocess.controldir(name, make=False)
        if record is None:  # h14ensure: ensure() passes its reply's
            record = xprocess.record(name)
        self.pid = record.get("pid") if record else None
        self.logpath = as_path(record["log_path"]) if record and record.get("log_path") else None

    def _live_record(self):
        """lpd's record when it is running with this info's pid (lpd checks
        pid and start time), else None."""
        if not self.pid:
            return None
        record = self._xprocess.record(self.name)
        if not record or record.get("pid") != self.pid:
            return None
        if record.get("state") not in RUNNING_STATES or not record.get("alive"):
            return None
        return record

    def isrunning(self, ignore_zombies=True):
        """True while the process runs (lpd reaps its helpers: no zombies)."""
        return self._live_record() is not None

    def terminate(self, *, kill_proc_tree=True, timeout=20):
        """SIGTERM, SIGKILL after `timeout` s, like pytest-xprocess. Returns
        1 (terminated), 0 (nothing to do: no pid, not running, or only this
        session's lease on a shared helper dropped while others hold it),
        -1 (still there after `timeout` s more; with timeout <= 0 both
        signals are sent and -1 is answered at once, as xprocess does).
        kill_proc_tree=False signals the process alone, not its children."""
        record = self._live_record()
        if not self.pid or record is None:
            return 0
        # h14fixC: a shared helper this session holds with others: only
        # this session's hold goes (README, Leases), whatever
        # kill_proc_tree and timeout say; the helper runs on for them.
        if self.name in self._xprocess.leases:
            if int(record.get("holders") or 0) > 1:
                left = self._xprocess.release(self.name)
                if left is None or int(left.get("holders") or 0) > 0:
                    return 0
                # The others went meanwhile: lpd stops it (after its linger).
                if self._live_record() is None:
                    return 1
            elif not kill_proc_tree:
                # Signalled alone (lpd would stop the tree as the last
                # holder goes), then the lease goes: a lease kept would
                # start it again on the next connection after an lpd restart.
                code = self._terminate_alone(float(timeout))
                self._xprocess.release(self.name)
                return code
        elif int(record.get("holders") or 0) > 0:
            # Held by other connections (their shared=True, `lpctl ensure
            # --lease`) and not by this session: its teardown must not stop
            # it under them (issue 14, leases); lpd stops it after the last
            # holder. pytest-xprocess has no leases, so it would kill here.
            self._xprocess._say(f"lpd_pytest: warning: helper {self.name!r} is held by {record.get('holders')} "
                                "other connection(s) (leases); terminate() leaves it running for them")
            return 0
        if not kill_proc_tree:
            return self._terminate_alone(float(timeout))
        return self._xprocess.kill(self.name, float(timeout))

    def _terminate_alone(self, timeout):
        self._xprocess._forget(self.name)  # h14ensure: the next ensure asks lpd
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return 0
        try:
            # Checked again with the pidfd held: this pid cannot now be
            # handed to another program before the signal goes.
            if self._live_record() is None:
                return 0
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    signal.pidfd_send_signal(pidfd, sig)
                except ProcessLookupError:
                    return 1
                if timeout > 0 and select.select([pidfd], [], [], timeout)[0]:
                    return 1
            return -1
        finally:
            os.close(pidfd)


class XProcess:
    """The `xprocess` / `lpd_process` fixture's object: ensure(), getinfo(),
    plus the attributes pytest-xprocess's object has (rootdir, resources,
    proc_wait_timeout, log). One connection to lpd per object: it is what
    holds the leases of `shared=True` helpers."""

    def __init__(self, config=None, rootdir=None, socket_path=None, scope="", log=None, proc_wait_timeout=60):
        self.config = config
        # h14fixC: a directory made here (no pytest cache to put it in) is
        # removed by close(), but for the control dirs of helpers still
        # running (their cwd, their files).
        self._made_rootdir = rootdir is None
        self._rootdir_lock = None
        self.socket_path = socket_path or default_socket_path()
        self.rootdir = as_path(rootdir if rootdir is not None else self._session_rootdir(scope))
        self.scope = scope
        self.log = log or _Log()
        self.proc_wait_timeout = proc_wait_timeout
        self.resources = []
        self.interruptible = set()
        self.log_paths = {}  # name -> log path of the start this session last saw
        self.first_offsets = {}  # name -> where its log stood when this session first ensured this start
        self.starts = {}  # name -> how many times this session started it (not reused)
        self._connection = None
        # Leases this session holds (name -> its proc.ensure fields): the
        # connection holds them, so when lpd restarts they are taken again
        # on the next one, within the grace lpd gives a restarted lease.
        self.leases = {}
        self._lock = threading.RLock()  # the connection: requests, and the keeper's look at it
        self._keeper = None
        self._control_read, self._control_write = None, None

    # -- talking to lpd ---------------------------------------------------

    def _connect(self):
        """A new connection, with this session's leases taken on it again."""
        self._connection = Connection(self.socket_path, role="shim", client="lpd_xprocess")
        if self._keeper is not None and threading.current_thread() is not self._keeper:
            os.write(self._control_write, b"w")  # watch this one
        for fields in list(self.leases.values()):
            try:
                self._connection.request("proc.ensure", fields, timeout=None)
            except LpdError:
                pass  # the helper cannot be had again: the next call about it says why

    def request(self, op, fields, timeout=30.0):
        with self._lock:
            if self._connection is None:
                self._connect()
            try:
                return self._connection.request(op, fields, timeout=timeout)
            except LpdUnavailable:
                # lpd went away (a restart): connect again once, leases
                # included, and ask again; a second failure is the caller's.
                self._drop_connection()
                if timeout is not None and timeout <= 0:
                    raise
                self._connect()
                return self._connection.request(op, fields, timeout=timeout)

    def _drop_connection(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _keep_leases(self):
        """Keeper thread, while this session holds leases: waits (select) for
        the connection to end while no request is under way, and then
        connects again and takes the leases again. While lpd is away (a
        restart, well under the 30 s grace lpd gives a restarted lease) it
        tries again after 50 ms, doubling to 1 s; otherwise it sleeps in
        select until the connection ends, a new one is made, or close()."""
        delay = None
        while True:
            with self._lock:
                conn = self._connection
            watched = [self._control_read] + ([conn.fileno()] if conn is not None else [])
            try:
                ready, _, _ = select.select(watched, [], [], delay)
            except (OSError, ValueError):
                ready = []  # the connection was closed under us: look again
            if self._control_read in ready and b"x" in os.read(self._control_read, 64):
                return  # close()
            with self._lock:
                if conn is not None and conn is self._connection and conn.fileno() in ready:
                    if conn.read_available():
                        continue  # a line no request waited for: kept for the next one
                    self._drop_connection()
                previous, delay = delay, None
                if self._connection is None and self.leases:
                    try:
                        self._connect()
                    except LpdUnavailable:
                        self._drop_connection()
                        delay = 0.05 if previous is None else min(previous * 2, 1.0)

    def _start_keeper(self):
        if self._keeper is not None:
            return
        # One byte wakes the keeper: b"w" a new connection to watch, b"x" close().
        self._control_read, self._control_write = os.pipe()
        self._keeper = threading.Thread(target=self._keep_leases, name="lpd-xprocess-leases", daemon=True)
        self._keeper.start()

    def _named(self, name, **fields):
        fields["name"] = name
        if self.scope:
            fields["scope"] = self.scope
        return fields

    def record(self, name):
        """lpd's record of `name` in this project (`alive` checked now), or None.
        h14fixC: this user's only (`owner`), as pytest-xprocess sees only
        the helpers of its own cache directory: another user's helper of
        that name in this scope is not this session's (lpd would answer
        permission_denied), and ensure() starts the caller's own."""
        try:
            return self.request("proc.info", self._named(name, owner=os.geteuid()))
        except LpdError as e:
            if e.code in ("not_found", "permission_denied"):
                return None
            raise

    def release(self, name):
        """h14fixC: proc.release of this session's lease on `name` (the
        helper runs on while others hold it). Returns lpd's answer
        (`holders`: how many hold it now), None when lpd could not say."""
        self.leases.pop(name, None)
        try:
            return self.request("proc.release", self._named(name, owner=os.geteuid()))
        except (LpdError, LpdUnavailable):
            return None

    def kill(self, name, timeout):
        """proc.kill with pytest-xprocess's codes, see XProcessInfo.terminate."""
        self._forget(name)  # h14ensure: the next ensure asks lpd
        if timeout <= 0:
            self.leases.pop(name, None)  # h14fixC: not taken again after an lpd restart
            try:  # not waited for: the answer to a later request skips it
                self.request("proc.kill", self._named(name, grace=0.0, owner=os.geteuid()), timeout=0.0)  # h14fixC
            except LpdError as e:
                if e.code != "timeout":
                    return -1
            return -1
        try:
            result = self.request("proc.kill", self._named(name, grace=timeout, owner=os.geteuid()),  # h14fixC
                                  timeout=2 * timeout + KILL_REPLY_MARGIN)
        except LpdError:
            return -1
        self.leases.pop(name, None)  # released, or the helper is gone
        if result.get("released"):
            return 0
        return 1 if result.get("was_running") else 0

    def close(self):
        self._forget()  # h14ensure
        if self._keeper is not None:
            os.write(self._control_write, b"x")
            self._keeper.join(timeout=10)
            os.close(self._control_read)
            os.close(self._control_write)
            self._keeper = None
        if self._made_rootdir:
            self._remove_rootdir()  # h14fixC
        with self._lock:
            self._drop_connection()

    # -- h14fixC: control dirs without pytest's cache -------------------------
    # $TMPDIR/lpd-xprocess-u<uid>/ (0700, the user's) holds one directory per
    # session, flock()ed while the session lives. At its end a session
    # removes its own, but for the control dir of a helper still running
    # (its cwd, its files), and the directories of ended sessions whose
    # helpers have ended since: nothing piles up, and no live session's
    # directory is touched. Links are removed, never followed
    # (shutil.rmtree works on descriptors). Where the per-user directory
    # cannot be had safely (someone else's, a link), a plain mkdtemp.
    SCOPE_FILE = ".lpd-scope"

    def _session_rootdir(self, scope):
        base = tempfile.gettempdir()
        parent = os.path.join(base, f"lpd-xprocess-u{os.geteuid()}")
        try:
            try:
                os.mkdir(parent, 0o700)
            except FileExistsError:
                pass
            st = os.lstat(parent)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
                raise PermissionError(f"{parent} is not a private directory of this user")
            root = tempfile.mkdtemp(prefix="s-", dir=parent)
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # a sweeper looking at it just now lets go at once
                with open(os.path.join(root, self.SCOPE_FILE), "x") as f:
                    f.write(f"{self.socket_path}\n{scope or ''}")  # whose lpd, which project
            except OSError:
                os.close(fd)
                raise
            self._rootdir_lock = fd
            return root
        except OSError:
            return tempfile.mkdtemp(prefix="lpd-xprocess-")

    def _remove_rootdir(self):
        """Removes this session's rootdir (see above), then those of ended
        sessions beside it. Never raises."""
        root = str(self.rootdir)
        self._remove_control_dirs(root, self.scope)
        if self._rootdir_lock is not None:
            os.close(self._rootdir_lock)
            self._rootdir_lock = None
            self._sweep_ended_sessions(os.path.dirname(root))

    def _remove_control_dirs(self, root, scope, cwds=None):
        """Removes `root` but for the control dirs of helpers of `scope`
        still running (lpd says; with `cwds`, for a session of another lpd:
        those that are a process's cwd or hold one); True when it is gone."""
        try:
            entries = os.listdir(root)
        except OSError:
            return False
        kept = False
        for entry in entries:
            path = os.path.join(root, entry)
            try:
                is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
                running = False
                if is_dir and cwds is not None:
                    running = any(c == path or c.startswith(path + "/") for c in cwds)
                elif is_dir:
                    fields = {"name": entry, "owner": os.geteuid()}
                    if scope:
                        fields["scope"] = scope
                    try:
                        self.controldir(entry, make=False)  # a helper's name, or not ours
                        record = self.request("proc.info", fields)
                    except ValueError:
                        record = None
                    except LpdError as e:
                        if e.code not in ("not_found", "permission_denied"):
                            raise
                        record = None
                    running = bool(record) and record.get("state") in RUNNING_STATES and bool(record.get("alive"))
                if running:
                    kept = True
                elif is_dir:
                    shutil.rmtree(path)
                elif entry != self.SCOPE_FILE:
                    os.unlink(path)
            except (OSError, LpdError, LpdUnavailable):
                kept = True
        if kept:
            return False
        try:
            os.unlink(os.path.join(root, self.SCOPE_FILE))
        except OSError:
            pass
        try:
            os.rmdir(root)
            return True
        except OSError:
            return False

    def _sweep_ended_sessions(self, parent):
        try:
            entries = os.listdir(parent)
        except OSError:
            return
        cwds = None
        for entry in entries:
            path = os.path.join(parent, entry)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # a session that still runs
            try:
                scope_fd = os.open(self.SCOPE_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                                   dir_fd=fd)
                try:
                    said = os.read(scope_fd, 65536).decode("utf-8", "replace")
                finally:
                    os.close(scope_fd)
            except OSError:
                os.close(fd)
                continue  # a session starting (it has not said its project yet)
            socket_path, _, scope = said.partition("\n")
            if socket_path != self.socket_path and cwds is None:
                cwds = _own_cwds()  # another lpd's helpers: this lpd cannot say whether they run
            try:
                self._remove_control_dirs(path, scope, cwds if socket_path != self.socket_path else None)
            finally:
                os.close(fd)

    # -- pytest-xprocess's API --------------------------------------------

    def controldir(self, name, make=True):
        """rootdir/NAME, the starter's control_dir (made when missing and `make`)."""
        if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\0" in name:
            raise ValueError(f"bad helper name {name!r}")  # the rest of the rules are lpd's
        path = self.rootdir.join(name) if hasattr(self.rootdir, "join") else self.rootdir / name
        if make and not os.path.isdir(str(path)):  # h14ensure: one stat when it exists
            os.makedirs(str(path), exist_ok=True)
        return path

    def getinfo(self, name):
        return XProcessInfo(self, name)

    def ensure(self, name, preparefunc, restart=False, persist_logs=True, *, shared=False, linger=None):
        """(pid, logpath) of the running process NAME of this project,
        starting it when it does not run or `restart`, and answering once
        its log matched the starter's pattern and its startup_check passed,
        both within the starter's `timeout`. `shared=True`: this session
        holds a lease on it until it ends (or terminate()); lpd stops it
        `linger` s after its last holder is gone.

        Raises TimeoutError (the pattern or startup_check did not come in
        time: the process is left running, as pytest-xprocess leaves it),
        RuntimeError (it exited first, or max_read_lines lines went by
        without a match), ValueError (a popen_kwarg or pattern lpd cannot
        honour; nothing started). persist_logs has no effect: lpd keeps
        the logs of each of the last starts apart."""
        controldir = self.controldir(name)
        starter = preparefunc(controldir, self)
        pattern = pattern_text(getattr(starter, "pattern", None))
        check = startup_check_of(starter)
        if pattern is None and check is None:
            raise RuntimeError(f"could not start process {name!r}: its starter has neither a pattern "
                               "nor a startup_check to know it started")
        timeout = float(getattr(starter, "timeout", 120))
        argv, cwd, _ = child_fields(starter, controldir, with_env=False)
        fields = self._named(name, argv=argv, cwd=cwd, timeout=timeout,
                             max_read_lines=int(getattr(starter, "max_read_lines", 50) or 0),
                             restart=bool(restart), keep_on_timeout=True)
        if pattern is not None:
            fields["pattern"] = pattern
        if shared:
            fields["lease"] = True
            if linger is not None:
                fields["linger"] = float(linger)

        began = time.monotonic()
        known = None if restart or shared else self._known_running(name, fields)
        try:
            result = known
            if result is None and not restart:
                # h14ensure: the common call (the helper runs) goes without
                # the environment; lpd answers "not_running" when a start
                # is due, and the whole request follows.
                result = self.request("proc.ensure", dict(fields, only_if_running=True), timeout=None)
                if result.get("outcome") == "not_running":
                    result = None
            if result is None or shared:
                fields["env"] = child_fields(starter, controldir)[2]
            if result is None:
                result = self.request("proc.ensure", fields, timeout=None)  # lpd keeps the time
        except LpdError as e:
            if e.code == "timeout":
                raise TimeoutError(f"could not start process {name!r}: {e.message}") from None
            if e.code == "bad_request":
                raise ValueError(f"could not start process {name!r}: {e.message}") from None
            raise RuntimeError(f"could not start process {name!r}: {e.message}") from None
        if known is None:
            self._learn(name, fields, result)
        if shared:
            # Taken again on a new connection after an lpd restart: reused,
            # never restarted (restart is for this call only).
            self.leases[name] = dict(fields, restart=False)
            self._start_keeper()
        # h14ensure: the info from the reply (no second request).
        info = XProcessInfo(self, name, record=result, controldir=controldir)
        self.resources.append(XProcessResources(info, bool(getattr(starter, "terminate_on_interrupt", False))))
        if getattr(starter, "terminate_on_interrupt", False):
            self.interruptible.add(name)
        if not result.get("reused"):
            self.starts[name] = self.starts.get(name, 0) + 1
            self.first_offsets[name] = 0
        elif name not in self.first_offsets or self.log_paths.get(name) != result["log_path"]:
            self.first_offsets[name] = int(result.get("offset", 0))
        self.log_paths[name] = result["log_path"]
        self._warn_if_differs(name, result)
        if not result.get("reused") and check is not None:
            self._wait_startup_check(name, check, began + timeout, timeout)
        return result["pid"], as_path(result["log_path"])

    # h14ensure: a helper this object was told twice is running, asked for
    # again with the same fields, is answered here, as pytest-xprocess
    # answers from its pid file: lpd would answer "reused" with the same
    # pid. A pidfd (which names one process, never a later one with its
    # pid) taken before lpd's second answer and still unreadable after it
    # proves it is the very process lpd vouched for and that it still runs.
    # Any other call about the name (terminate, kill), restart or shared
    # goes to lpd, and so does anything once the process has ended.
    def _known_running(self, name, fields):
        known = self.__dict__.get("_known", {}).get(name)
        if known is None or not known["confirmed"] or known["fields"] != fields:
            return None
        if _ended(known["pidfd"]):
            self._forget(name)  # it ended: lpd decides what now
            return None
        try:
            offset = os.stat(known["log_path"]).st_size  # lpd's reused offset: the log's end
        except OSError:
            return None
        return {"outcome": "reused", "reused": True, "differs": [], "pid": known["pid"],
                "log_path": known["log_path"], "offset": offset}

    def _learn(self, name, fields, result):
        """After lpd's answer: confirms the pidfd taken after the previous
        answer when it names the same pid and still runs; otherwise takes
        one for this answer's pid, to be confirmed by the next answer."""
        known_all = self.__dict__.setdefault("_known", {})
        known = known_all.get(name)
        pid = result.get("pid")
        if known is not None and known["pid"] == pid and not _ended(known["pidfd"]):
            known.update(fields=dict(fields), log_path=result["log_path"], confirmed=True)
            return
        self._forget(name)
        if not isinstance(pid, int) or pid <= 0 or not result.get("log_path"):
            return
        try:
            pidfd = os.pidfd_open(pid)  # close-on-exec
        except OSError:
            return
        known_all[name] = {"pid": pid, "pidfd": pidfd, "fields": dict(fields), "log_path": result["log_path"],
                           "confirmed": False}

    def _forget(self, name=None):
        """Drops what _learn knew of `name` (of every name: None)."""
        known_all = self.__dict__.get("_known", {})
        for key in list(known_all) if name is None else [name]:
            known = known_all.pop(key, None)
            if known is not None:
                os.close(known["pidfd"])

    # h14ensure: a helper reused (or a start joined) with another argv,
    # pattern or cwd than this starter's is used all the same, as
    # pytest-xprocess reuses a running process whatever its starter says,
    # but not silently: one line per name and difference, past pytest's
    # capture. Not a Python warning: under `filterwarnings = error` it would
    # fail suites that run unchanged under pytest-xprocess.
    def _warn_if_differs(self, name, result):
        differs = [str(d) for d in result.get("differs") or () if isinstance(d, str)]
        if not differs:
            return
        key = (name, tuple(differs))
        warned = self.__dict__.setdefault("_differs_warned", set())
        if key in warned:
            return
        warned.add(key)
        how = "joined a start under way" if result.get("outcome") == "joined" else "reused it"
        line = (f"lpd_pytest: warning: helper {name!r} already runs (pid {result.get('pid')}) with another "
                f"{' and '.join(differs)} than this starter's; {how}, as pytest-xprocess would "
                "(restart=True starts it with this starter's)")
        self._say(line)

    def _say(self, line):
        """Writes one line to the terminal pytest writes to, with its
        capture suspended; stderr without pytest. Never raises."""
        try:
            plugins = getattr(self.config, "pluginmanager", None)
            capman = plugins.getplugin("capturemanager") if plugins is not None else None
            reporter = plugins.getplugin("terminalreporter") if plugins is not None else None
            if capman is not None and reporter is not None:
                with capman.global_and_fixture_disabled():
                    if getattr(reporter._tw, "width_of_current_line", 0):
                        reporter.write("\n")  # after the progress dots, on a line of its own
                    reporter.write_line(line)
                return
            stream = sys.__stderr__ or sys.stderr
            stream.write(line + "\n")
            stream.flush()
        except Exception:
            pass

    @staticmethod
    def _wait_startup_check(name, check, deadline, timeout):
        """Asks check() until it is true, up to the deadline the pattern
        wait shared. An OSError from it (the port not open yet) counts as
        not yet."""
        last_error = None
        while True:
            try:
                if check():
                    return
                last_error = None
            except OSError as e:
                last_error = e
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the startup_check of process {name!r} did not pass within "
                                   f"{timeout:g} s (the process is left running)") from last_error
            time.sleep(STARTUP_CHECK_INTERVAL)

    def records(self):
        """lpd's records of this project's helpers, ended ones too."""
        # h14fixB: proc.list answers a page at a time (its "next" is the
        # cursor; an lpd from before paging sends none), filtered by scope.
        fields = {"all": True, "scope": self.scope}
        found = []
        while True:
            result = self.request("proc.list", fields)
            found.extend(r for r in result.get("processes", []) if r.get("scope", "") == self.scope)
            if not isinstance(result.get("next"), dict):
                break
            fields["after"] = result["next"]
        return sorted(found, key=lambda r: r.get("name", ""))

    def terminate_interruptible(self):
        for name in sorted(self.interruptible):
            try:
                self.getinfo(name).terminate()
            except (LpdError, LpdUnavailable):
                pass

    def _xkill(self, tw):
        """--xkill: terminates this project's helpers. Returns 1 when one
        could not be terminated, else 0."""
        failed = 0
        for record in self.records():
            info = self.getinfo(record["name"])
            if record.get("state") in RUNNING_STATES:
                code = info.terminate()
            elif record.get("tree_running"):
                # h14fixB: its leader exited, its tree runs on (a
                # daemonizing server): proc.kill stops what it left.
                code = self._kill_left_running(record["name"])
            else:
                code = 0
            failed = failed or code == -1
            status = {1: "TERMINATED", -1: "FAILED TO TERMINATE", 0: "NO PROCESS FOUND"}[code]
            tw.line(f"{record.get('pid')} {record['name']} {status}")
        return 1 if failed else 0

    def _kill_left_running(self, name, timeout=20.0):
        """h14fixB: proc.kill of a helper whose leader exited while its tree
        runs on; 1 when lpd stopped what it left, 0 when nothing was left,
        -1 when lpd could not."""
        self._forget(name)
        try:
            result = self.request("proc.kill", self._named(name, grace=timeout),
                                  timeout=2 * timeout + KILL_REPLY_MARGIN)
        except LpdError:
            return -1
        return 1 if result.get("was_running") or result.get("left_running_killed") else 0

    def _xshow(self, tw):
        """--xshow: pid, name, LIVE or DEAD and the log of this project's helpers."""
        for record in self.records():
            # h14fixB: a tree still running after its leader exited is LIVE.
            live = (record.get("state") in RUNNING_STATES and self.getinfo(record["name"]).isrunning()) \
                or (record.get("state") not in RUNNING_STATES and bool(record.get("tree_running")))
            tw.line(f"{record.get('pid')} {record['name']} {'LIVE' if live else 'DEAD'} {record.get('log_path')}")
        return 0

    def _force_clean_up(self):
        pass
