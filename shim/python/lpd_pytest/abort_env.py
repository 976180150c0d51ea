"""pytest-abort's environment under lpd (issue 15, h15abort).

- PYTEST_ABORT_CRASHED_TESTS_LOG: each crash lpd records for this pytest's
  run is appended to that file as one JSON line, lpd's crash record, whose
  field names are pytest-abort's (nodeid, reason, crash_time, duration ...).
  Under `lpctl run` lpd itself appends them (lpctl passes the variable on as
  --crash-log). For a plain `pytest` (or `pytest -n N`) the controller starts
  a small writer process as the user: it follows the run's crash events, and
  when the session ends (or the controller dies) it appends every crash record
  of the run not yet written, once each, then exits. The controller waits
  for it at the end of a session, so the file is complete when pytest exits.
- PYTEST_ABORT_LAST_RUNNING_FILE / PYTEST_ABORT_LAST_RUNNING_DIR: accepted and
  left alone. lpd knows which test each process runs, so no marker file is
  written (a runner reads the crash log or `lpctl crashes` instead).

The file is the user's: opened without following a link, never blocking on
a FIFO, only a regular file, and each record is one write() of one whole
line with O_APPEND, so concurrent writers never tear each other's lines.
"""

import errno
import json
import os
import stat
import subprocess
import sys

CRASH_LOG_ENV = "PYTEST_ABORT_CRASHED_TESTS_LOG"
LAST_RUNNING_ENVS = ("PYTEST_ABORT_LAST_RUNNING_FILE", "PYTEST_ABORT_LAST_RUNNING_DIR")
# How long the writer waits for lpd to record the crash of a controller that
# died without ending its session, and how long a controller waits for the
# writer at the end: lpd records a death as soon as the process is gone.
DEATH_RECORD_WAIT = 10.0
FINISH_WAIT = 15.0
# lpd restarting under the writer: it reconnects after 50 ms, doubling to 1 s,
# and gives up after 12 s away (within the controller's FINISH_WAIT).
RECONNECT_START = 0.05
RECONNECT_MAX = 1.0
AWAY_LIMIT = 12.0


def crash_log_wanted(link):
    """The crash log to write for this process's run, or None: only the
    controller of a run lpd does not supervise (under `lpctl run` lpd writes
    it), connected to lpd."""
    path = os.environ.get(CRASH_LOG_ENV, "")
    if not path or link is None or link.worker_id or link.conn is None or not link.run_id:
        return None
    if os.environ.get("LPD_RUN_ID"):
        return None
    return os.path.abspath(path)


def open_crash_log(path):
    """An O_APPEND descriptor of the user's crash log, created if missing
    (as pytest-abort's is); raises OSError for a link, a FIFO, anything
    but a regular file, or another user's file."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        if st.st_uid != os.geteuid():  # another user's file would get our tracebacks, and could feed us lines
            raise OSError(f"{path} belongs to another user (uid {st.st_uid})")
    except BaseException:
        os.close(fd)
        raise
    return fd


def crash_line(record):
    """One crash record as the line lpd writes for --crash-log."""
    record = {k: v for k, v in record.items() if k != "redacted"}
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8", "surrogateescape")


def append_line(path, line):
    """Appends one whole line with a single write (O_APPEND: never torn by
    another writer's line)."""
    fd = open_crash_log(path)
    try:
        done = os.write(fd, line)
        if done != len(line):  # a full disk: what is there is a torn line, say so
            raise OSError(f"short write to {path} ({done} of {len(line)} bytes)")
    finally:
        os.close(fd)


class CrashLogWriter:
    """The controller's handle on the writer process."""

    def __init__(self, socket_path, run_id, path):
        self.path = path
        here = os.path.abspath(__file__)
        self.process = subprocess.Popen(
            [sys.executable, "-I", here, "--socket", socket_path, "--run-id", run_id, "--log", path,
             "--controller-pid", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, close_fds=True, start_new_session=True)
        # No handshake: the writer subscribes with replay and ends with
        # crash.list, so a crash recorded before it listens is still written.

    def finish(self):
        """The session is over and lpd has every message: the writer writes
        what is left and exits; waits for it (bounded)."""
        try:
            self.process.stdin.write(b"end\n")
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=FINISH_WAIT)
        except subprocess.TimeoutExpired:
            sys.stderr.write(f"lpd_pytest: warning: the crash log writer for {self.path} is still running\n")


def start(link):
    """Starts the writer for this process's run when PYTEST_ABORT_CRASHED_TESTS_LOG
    asks for one; returns it, or None. A crash log that cannot be used (a
    link, a FIFO, no permission) is one warning line, and no writer."""
    path = crash_log_wanted(link)
    if path is None:
        return None
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)  # as pytest-abort does
        os.close(open_crash_log(path))
    except OSError as e:
        why = e.strerror if e.errno is not None and e.strerror else str(e)
        if e.errno == errno.ELOOP:
            why = "it is a symbolic link"
        sys.stderr.write(f"lpd_pytest: warning: {CRASH_LOG_ENV}={path} cannot be written ({why}); "
                         f"crashes are in `lpctl crashes --run-id {link.run_id}`\n")
        return None
    return CrashLogWriter(link.socket_path, link.run_id, path)


# -- the writer process ----------------------------------------------------

def _load_client():
    """lpd_pytest.client without importing the package (and pytest with it)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "lpd_pytest_client", os.path.join(os.path.dirname(os.path.abspath(__file__)), "client.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _writer_main(argv):
    import argparse
    import select
    import signal
    import time

    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--controller-pid", type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for pytest; we end with it
    client = _load_client()
    written = set()

    def write(record):
        crash_id = record.get("crash_id")
        if record.get("run_id") != args.run_id or crash_id in written:
            return
        written.add(crash_id)
        try:
            append_line(args.log, crash_line(record))
        except OSError as e:
            sys.stderr.write(f"lpd_pytest: warning: cannot append to {args.log}: {e.strerror or e}\n")

    def write_all_recorded(conn):
        fields = {"run_id": args.run_id}
        while True:
            page = conn.request("crash.list", fields)
            for record in page.get("crashes", []):
                write(record)
            nxt = page.get("next")
            if not isinstance(nxt, int):
                return
            fields["after"] = nxt

    def connect():
        """A subscription to the run's crash records (the kept ones replayed:
        write() skips what it wrote), or None while lpd is away."""
        try:
            c = client.Connection(args.socket, role="cli")
        except (client.LpdUnavailable, OSError):
            return None
        try:
            c.request("events.subscribe", {"run_id": args.run_id, "types": ["crash"], "replay": True})
            return c
        except (client.LpdUnavailable, client.LpdError, OSError):
            c.close()
            return None

    def give_up():
        sys.stderr.write(f"lpd_pytest: warning: lpd went away and did not come back; {args.log} may lack "
                         f"crashes of run {args.run_id} (see `lpctl crashes --run-id {args.run_id}`)\n")
        return 1

    conn = connect()
    away_since = None if conn is not None else time.monotonic()
    backoff = RECONNECT_START
    controller_ended_cleanly = None  # None: still running
    death_deadline = None
    stdin = sys.stdin.buffer.raw
    while True:
        while conn is not None:  # pushes already read
            push = conn.next_push(timeout=0)
            if push is None:
                break
            data = push.get("data")
            if push.get("event") == "crash" and isinstance(data, dict):
                write(data)
                if controller_ended_cleanly is False and data.get("pid") == args.controller_pid:
                    death_deadline = time.monotonic()  # its death is recorded: done
        done = controller_ended_cleanly or (death_deadline is not None and time.monotonic() >= death_deadline)
        if done and conn is not None:
            try:
                write_all_recorded(conn)
                return 0
            except (client.LpdUnavailable, client.LpdError, OSError):
                conn.close()
                conn, away_since = None, time.monotonic()
        if conn is None and away_since is not None and time.monotonic() - away_since > AWAY_LIMIT:
            return give_up()
        # lpd away (restarting): try again after a short, growing wait.
        timeouts = [] if conn is not None else [backoff]
        if death_deadline is not None and not done:
            timeouts.append(max(0.0, death_deadline - time.monotonic()))
        watch = ([conn.fileno()] if conn is not None else []) + ([stdin] if controller_ended_cleanly is None else [])
        ready, _, _ = select.select(watch, [], [], min(timeouts) if timeouts else None)
        if stdin in ready:
            data = os.read(stdin.fileno(), 64)
            if data.startswith(b"end"):
                controller_ended_cleanly = True
            elif not data:  # the controller died without ending its session
                controller_ended_cleanly = False
                death_deadline = time.monotonic() + DEATH_RECORD_WAIT
        if conn is not None and conn.fileno() in ready and not conn.read_available():
            conn.close()
            conn, away_since, backoff = None, time.monotonic(), RECONNECT_START
        if conn is None:
            conn = connect()
            if conn is not None:
                away_since = None
            else:
                backoff = min(backoff * 2, RECONNECT_MAX)


if __name__ == "__main__":
    sys.exit(_writer_main(sys.argv[1:]))
