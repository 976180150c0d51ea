"""The `pytest-live-pause` command, for scripts and habits built on
pytest-live-pause: `resume`, `ls` and `watch` with that tool's options,
driving lpd over its socket (pause.resume, pause.list, pause.watch; see
protocol/README.md). Nothing polls: `watch` is answered by lpd the moment a
pause appears.

Exit codes: 0 done; 1 lpd refused or failed (no daemon, no such pause, a
stale or already resumed one, --failure-reason on a checkpoint, the watched
run ended); 2 a bad command line (argparse); 124 `watch --timeout` passed
with no pause (as `lpctl watch` and timeout(1))."""

import argparse
import json
import os
import stat
import sys

from lpd_pytest.client import Connection, LpdError, LpdUnavailable, default_socket_path

from .pause_dir import default_pause_dir

PROG = "pytest-live-pause"
EXIT_OK, EXIT_FAILED, EXIT_TIMEOUT = 0, 1, 124
MAX_PAUSE_FILE_BYTES = 1024 * 1024  # a pause record is a few KiB
REPLY_GRACE_SECONDS = 10.0  # beyond watch --timeout: lpd's own timer answers first


class Refused(Exception):
    """A resume this command will not send, with the reason for the user."""


def connect(args):
    return Connection(args.lpd_socket or default_socket_path(), role="cli", client=PROG)


def read_pause_file(path):
    """The pause_id of a pause file (pauses/<pause_id>.json), read the way
    lpd reads a file someone else may have planted: no link followed, no
    FIFO waited on, at most MAX_PAUSE_FILE_BYTES."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as e:
        raise Refused(f"cannot read pause file {path}: {e.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Refused(f"{path} is not a regular file")
        data = os.read(fd, MAX_PAUSE_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_PAUSE_FILE_BYTES:
        raise Refused(f"{path} is larger than a pause file can be")
    try:
        record = json.loads(data)
    except ValueError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("pause_id"), str):
        raise Refused(f"{path} is not a pause file (no \"pause_id\")")
    return record["pause_id"]


def pause_id_of(target):
    """TARGET is a pause id (or a unique prefix) or the path of its file."""
    if "/" in target or target.endswith(".json") or os.path.exists(target):
        return read_pause_file(target)
    return target


def list_pauses(conn, **fields):
    """pause.list, every page of it (a host's history does not fit one reply)."""
    pauses = []
    while True:
        page = conn.request("pause.list", fields)
        pauses.extend(page.get("pauses", []))
        cursor = page.get("next")
        if not isinstance(cursor, dict):
            return pauses
        fields["after"] = cursor


def find_pause(conn, pause_id):
    """The pause `pause_id` (or the one pause it is a unique prefix of).
    Pending pauses first: they are the ones a resume is for, and their list
    is as short as the tests paused right now, while every pause a host
    ever had may not fit in one answer. Only for an id that is not pending
    does it ask about the others, to say what became of it."""
    match = _one_match(list_pauses(conn), pause_id)
    if match is not None:
        return match
    try:
        pauses = list_pauses(conn, all=True)
    except LpdError as e:
        raise Refused(f"no pending pause {pause_id!r} (lpd could not list the others: {e.message})") from None
    match = _one_match(pauses, pause_id)
    if match is None:
        raise Refused(f"no pause {pause_id!r}")
    return match


def _one_match(pauses, pause_id):
    exact = [p for p in pauses if p.get("pause_id") == pause_id]
    matches = exact or [p for p in pauses if p.get("pause_id", "").startswith(pause_id)]
    if len(matches) > 1:
        raise Refused(f"{pause_id!r} matches {len(matches)} pauses; give more of the id")
    return matches[0] if matches else None


def resume_fields(pause, args):
    """pause.resume's fields for this pause, or Refused when the options do
    not fit its kind: a failure pause takes --failure-reason only; any other
    pause (a checkpoint) --result and --reason, never --failure-reason."""
    pause_id = pause["pause_id"]
    status = pause.get("status")
    if status == "stale":
        raise Refused(f"pause {pause_id} is stale: its pytest process (pid {pause.get('pid')} on "
                      f"{pause.get('hostname') or 'this host'}) is gone; nothing to resume")
    if status != "pending":
        raise Refused(f"pause {pause_id} is {status}, not pending; nothing to resume")
    fields = {"pause_id": pause_id}
    if pause.get("kind") == "failure":
        if args.result is not None or args.reason is not None:
            raise Refused(f"pause {pause_id} is a failure pause: use --failure-reason, not --result/--reason")
        if args.failure_reason is not None:
            fields["failure_reason"] = args.failure_reason
        return fields
    if args.failure_reason is not None:
        raise Refused(f"pause {pause_id} is a {pause.get('kind')} pause, not a failure pause: --failure-reason "
                      f"is refused; use --result true|false|none [--reason TEXT]")
    if args.result is None:
        raise Refused(f"pause {pause_id} is a {pause.get('kind')} pause: say --result true|false|none")
    fields["result"] = {"true": True, "false": False, "none": None}[args.result]
    if args.reason is not None:
        fields["reason"] = args.reason
    return fields


def resume_hint(pause):
    if pause.get("kind") == "failure":
        return f"{PROG} resume {pause.get('pause_id')} [--failure-reason TEXT]"
    return f"{PROG} resume {pause.get('pause_id')} --result true|false|none [--reason TEXT]"


def cmd_resume(args):
    pause_id = pause_id_of(args.target)
    with Session(args) as conn:
        pause = find_pause(conn, pause_id)
        fields = resume_fields(pause, args)
        resumed = conn.request("pause.resume", fields)["pause"]
    print(f"resumed {resumed.get('pause_id')} ({resumed.get('kind')}) {resumed.get('nodeid', '')}".rstrip())
    return EXIT_OK


def runs_in(pause_dir):
    """The run ids that have a directory under DIR/runs."""
    try:
        return {name for name in os.listdir(os.path.join(pause_dir, "runs"))}
    except OSError:
        return set()


def cmd_ls(args):
    with Session(args) as conn:
        pauses = list_pauses(conn, all=bool(args.all))
    if args.pause_dir:
        runs = runs_in(os.path.abspath(args.pause_dir))
        pauses = [p for p in pauses if p.get("run_id") in runs]
    if not pauses:
        print("no pauses" if args.all else "no pending pauses")
        return EXIT_OK
    rows = [("PAUSE_ID", "STATUS", "KIND", "RUN_ID", "PID", "WORKER", "NODEID")]
    for p in pauses:
        what = p.get("nodeid") or ""
        if p.get("task"):
            what = f"{what} task: {p['task']}".strip()
        rows.append((p.get("pause_id", ""), p.get("status", ""), p.get("kind", ""), p.get("run_id", ""),
                     str(p.get("pid", "")), p.get("worker_id") or "-", what))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return EXIT_OK


def print_pause(pause):
    print(f"pause_id: {pause.get('pause_id')}")
    for key in ("run_id", "kind", "status", "nodeid", "task", "original_failure", "timeout", "pid", "worker_id",
                "hostname", "cwd"):
        if pause.get(key) not in (None, ""):
            print(f"{key}: {pause[key]}")
    print(f"resume: {resume_hint(pause)}")


def cmd_watch(args):
    fields = {"run_id": args.run_id}
    if args.timeout is not None:
        fields["timeout"] = args.timeout
    with Session(args) as conn:
        print(f"watching run {args.run_id} for pauses...", file=sys.stderr, flush=True)
        try:
            # lpd answers the moment a pause is pending: no polling here.
            reply = conn.request("pause.watch", fields,
                                 timeout=None if args.timeout is None else args.timeout + REPLY_GRACE_SECONDS)
        except LpdError as e:
            if e.code == "timeout":
                print(f"{PROG}: no pause in run {args.run_id} within {args.timeout:g} s", file=sys.stderr)
                return EXIT_TIMEOUT
            if e.code == "conflict":
                raise Refused(f"run {args.run_id} is no longer active") from None
            raise
    print_pause(reply["pause"])
    return EXIT_OK


class Session:
    """One connection for one command, closed however it ends."""

    def __init__(self, args):
        self.conn = connect(args)

    def __enter__(self):
        return self.conn

    def __exit__(self, *exc):
        self.conn.close()
        return False


def result_choice(text):
    value = text.lower()
    if value not in ("true", "false", "none"):
        raise argparse.ArgumentTypeError("must be true, false or none")
    return value


def parser():
    p = argparse.ArgumentParser(prog=PROG, description="Resume, list and watch live pauses of pytest runs (served "
                                "by lpd: the pytest-live-pause command for lpd's plugin).")
    p.add_argument("--lpd-socket", default=None, help="lpd's socket (default: $LPD_SOCKET, else the per-user path)")
    sub = p.add_subparsers(dest="command", required=True)
    pause_dir_help = f"the runs' pause directory (default {default_pause_dir()}); pauses are found through lpd"

    r = sub.add_parser("resume", help="resume a pending pause")
    r.add_argument("target", help="pause_id, a unique prefix of one, or the path of its pauses/<pause_id>.json")
    r.add_argument("--pause-dir", default=None, help=pause_dir_help)
    r.add_argument("--failure-reason", default=None, help="failure pause: text added to the test's failure report")
    r.add_argument("--result", type=result_choice, default=None, metavar="true|false|none",
                   help="checkpoint: the decision checkpoint() returns")
    r.add_argument("--reason", default=None, help="checkpoint: why (returned to the test)")
    r.set_defaults(run=cmd_resume)

    ls = sub.add_parser("ls", help="list pending pauses (-a: also stale, resumed and timed_out ones)")
    ls.add_argument("-a", "--all", action="store_true", help="include stale, resumed and timed_out pauses")
    ls.add_argument("--pause-dir", default=None, help="only the runs that have a directory here")
    ls.set_defaults(run=cmd_ls)

    w = sub.add_parser("watch", help="wait for a pending pause of one run, print it and exit")
    w.add_argument("--run-id", required=True, help="the pytest run to watch (printed when pytest starts)")
    w.add_argument("--pause-dir", default=None, help=pause_dir_help)
    w.add_argument("--timeout", type=float, default=None, help="give up after this many seconds (exit 124)")
    w.add_argument("--interval", type=float, default=None,
                   help="accepted for compatibility; lpd pushes the pause, nothing polls")
    w.set_defaults(run=cmd_watch)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if getattr(args, "failure_reason", None) is not None and getattr(args, "result", None) is not None:
        parser().error("--failure-reason and --result do not go together: a pause is either a failure or a checkpoint")
    try:
        return args.run(args)
    except Refused as e:
        print(f"{PROG}: {e}", file=sys.stderr)
    except LpdUnavailable as e:
        print(f"{PROG}: {e}", file=sys.stderr)
    except LpdError as e:
        print(f"{PROG}: {e.message} [{e.code}]", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
