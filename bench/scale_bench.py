#!/usr/bin/env python3
"""lpd at the scale of a busy CI host (issue 13): a long history, a big run,
many idle connections, and what lpd costs per test. A real lpd and lpctl
throughout; one function per figure, each printing the figure with its
target beside it. No pass/fail: run it on demand and read the numbers.

  history    build_state(): the state directory lpd itself writes, for
             --runs ended supervised runs (run.json, job.json with a CI
             job's environment, exit.json, output.log, events.jsonl) and
             --crashes records in crashes.jsonl (~4 KB tracebacks), with the
             global events journal (events/<first seq>.jsonl segments of
             8 MiB, seq.json) holding every run's events and a `crash`
             event per record
  a. restart figure_restart(): spawn -> lpd's readiness pipe -> first
             ping answered (target <= 1 s)
  b. lists   figure_crashes_first_page(), figure_events_first_page(),
             figure_runs_first_page(): the op's first page over a connected
             socket, and `lpctl crashes` / `lpctl events` / `lpctl runs -a`
             from spawn to its first printed line (target <= 50 ms);
             figure_*_all(): every page through `lpctl --json ...`
             figure_rss(): lpd's RSS once it answers, with that history
  c. junit   figure_junit_run(): one `lpctl run --junit` of --junit-tests
             (50,000) trivial tests on a fresh lpd: the JUnit parsed with
             xml.etree and its testcases counted, lpd's CPU per test
             (utime + stime of /proc/<lpd>/stat, spawn to exit) and lpd's
             peak RSS (VmHWM, reset through /proc/<lpd>/clear_refs first)
  d. idle    figure_idle_connections(): bench/idle_connections_bench.py
             run as it is, its output shown, RSS with --connections
             (10,000) idle connections (target <= 100 MB)
  e. cost    figure_run_overhead(): --overhead-tests (10,000) trivial tests
             under `pytest -n 2`, in three arms that alternate in one
             bench run, --overhead-repeat (9) rounds of: plain pytest,
             `lpctl run -- pytest`, pytest with pytest-abort (the real
             plugin, from the checkout given by --pytest-abort), each arm
             twice a round in mirrored order (A B C C B A). Per test:
             lpd's CPU (target <= 10 us) and the wall time over plain
             pytest, lpd's against pytest-abort's (target: under a fifth),
             and the CPU of all of an arm's processes over plain pytest
             (steadier than the wall time on a busy machine); medians over
             the rounds, whose arm order turns each round, with each
             round's figures and a bootstrap 90% interval of the wall-cost
             ratio (a verdict only when the interval is on one side).

The bench talks to lpd only between measurements: lpd's CPU is read from
/proc around runs in which only lpctl and the tests' shim talk to it, so
nothing the bench parses or asks is counted.

Usage: bench/scale_bench.py [--build build/default] [--quick]
       [--figures restart,lists,junit,idle,overhead]
       [--runs 10000] [--crashes 10000] [--repeat 3] [--keep DIR]
       [--junit-tests 50000] [--connections 10000]
       [--overhead-tests 10000] [--overhead-repeat 9] [--workers 2]
       [--pytest-abort CHECKOUT]

pytest-abort is not a Debian package: give a checkout of its repository
(https://github.com/ROCm/pytest-abort) with --pytest-abort or
$PYTEST_ABORT_SRC; it runs from there through PYTHONPATH, enabled with
`-p pytest_abort.plugin` and PYTEST_ABORT_LAST_RUNNING_DIR (one marker file
per xdist worker), as its README says. Without a checkout the bench falls
back to shim_cost_bench.py's marker-file plugin (what pytest-abort does)
and says so in the output.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

from proc_status import status_kib  # beside this file
from ready_pipe import read_readiness  # beside this file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"  # Debian's, with pytest and xdist

RESTART_TARGET_S = 1.0
FIRST_PAGE_TARGET_MS = 50.0
IDLE_RSS_TARGET_MB = 100.0
CPU_PER_TEST_TARGET_US = 10.0
WALL_COST_TARGET_RATIO = 0.2  # of pytest-abort's cost over plain pytest

# Every figure, in the order they run; --figures picks some.
FIGURES = ("restart", "lists", "junit", "idle", "overhead")

# Sizes: the issue's, and --quick's (a smoke check of every figure in a minute or two).
FULL = {"runs": 10000, "crashes": 10000, "repeat": 3, "junit_tests": 50000, "connections": 10000,
        "heavy": 1000, "overhead_tests": 10000, "overhead_repeat": 9}
QUICK = {"runs": 1000, "crashes": 1000, "repeat": 1, "junit_tests": 2000, "connections": 1000,
         "heavy": 50, "overhead_tests": 1000, "overhead_repeat": 1}


# -- the state directory -------------------------------------------------------

SEGMENT_BYTES = 8 * 1024 * 1024  # EventLog::kSegmentBytes


def run_id_of(i):
    return f"20261101-{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}-{i:06x}"


def traceback_text(i, size=4096):
    """A faulthandler-style traceback of about `size` bytes."""
    lines = ["Fatal Python error: Segmentation fault", "",
             f"Current thread 0x{0x7f0000000000 + i:x} (most recent call first):"]
    n = 0
    while sum(len(l) + 1 for l in lines) < size:
        lines.append(f'  File "/src/project/module_{n % 17}/deep/path/file_{n}.py", line {100 + n} in function_{n}')
        n += 1
    return "\n".join(lines)[:size]


def compact(value):
    return json.dumps(value, separators=(",", ":"))


class GlobalJournal:
    """events/<first seq, 20 digits>.jsonl segments of about 8 MiB, lines as
    daemon/history/event_line.cpp writes them ("seq" first)."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.file = None
        self.size = 0
        self.bytes = 0
        self.events = 0
        self.last_seq = 0

    def append(self, seq, t, event, run_id, owner, data):
        line = compact({"seq": seq, "time": t, "event": event, "run_id": run_id, "owner": owner, "data": data}) + "\n"
        if self.file is None or self.size >= SEGMENT_BYTES:
            if self.file:
                self.file.close()
            self.file = open(os.path.join(self.dir, f"{seq:020d}.jsonl"), "w")
            self.size = 0
        self.file.write(line)
        self.size += len(line)
        self.bytes += len(line)
        self.events += 1
        self.last_seq = seq

    def close(self):
        if self.file:
            self.file.close()
        with open(os.path.join(self.dir, "seq.json"), "w") as f:
            json.dump({"next_block": self.last_seq + 1}, f, indent=2)


def run_events(run_id, created, ended, uid, argv, cwd, tests, crashes):
    """(type, time, data) of one ended supervised run, as lpd publishes them:
    run.started, job created / in-progress, test.start and test.finish per
    test, a crash event per record, job done, run.ended."""
    def job(state, text, returncode=None):
        return {"payload": {"id": run_id, "returncode": returncode, "state": state, "text": text}, "type": "job"}
    out = [("run.started", created + 0.004,
            {"argv": argv, "created_at": created, "cwd": cwd, "hostname": "", "owner_uid": uid, "pid": 0,
             "run_id": run_id, "status": "active", "supervised": True, "workers": []}),
           ("job", created + 0.008, job("created", "created")),
           ("job", created + 0.02, job("in-progress", "running"))]
    for t in range(tests):
        nodeid = f"tests/test_mod_{t}.py::test_case_{t}"
        worker = f"gw{t % 2}"
        out.append(("test.start", created + 1 + t, {"nodeid": nodeid, "pid": 10000 + t % 2, "worker_id": worker}))
        out.append(("test.finish", created + 1.01 + t,
                    {"attempt": 1, "duration": 0.01, "message": "", "nodeid": nodeid, "outcome": "passed",
                     "phase": "call", "worker_id": worker}))
    for record in crashes:
        out.append(("crash", record["crash_time"], record))
    text = f"exited with code 1, {len(crashes)} crash(es)" if crashes else "exited with code 0"
    out.append(("job", ended + 0.004, job("done", text, 1 if crashes else 0)))
    out.append(("run.ended", ended + 0.005, {"ended_at": ended, "run_id": run_id}))
    return out


def crash_record(c, run_id, crash_time, uid):
    nodeid = f"tests/test_crashy_{c % 50}.py::test_segfault[{c}]"
    return {"crash_id": c + 1, "run_id": run_id, "nodeid": nodeid, "where": "test", "phase": "call",
            "worker_id": "gw0", "pid": 30000 + c, "signal": 11, "signal_name": "SIGSEGV", "exit_code": None,
            "reason": f"killed by SIGSEGV while running {nodeid} (call)", "traceback": traceback_text(c),
            "crash_time": crash_time, "duration": 0.5, "attempt": 1, "owner_uid": uid, "flaky": False}


def build_state(state_dir, runs, crashes, tests_per_run=5, uid=None):
    """Writes the layout lpd itself writes (daemon/core/state_store.h,
    daemon/history/event_log.h), checked against what a real `lpctl run`
    leaves. Crash records go to the runs in order (crash c to run
    c * runs // crashes), so crash ids, runs and seqs all grow with time.
    Returns what was written: {"events", "journal_bytes", "crashes_bytes"}."""
    uid = os.getuid() if uid is None else uid
    os.makedirs(os.path.join(state_dir, "runs"), mode=0o700, exist_ok=True)
    os.chmod(state_dir, 0o700)
    env = [f"VAR_{k}=value-{k}-" + "x" * 40 for k in range(40)]  # a CI job's environment, ~3 KB
    argv = [PYTHON, "-m", "pytest", "-n", "2", "tests"]
    cwd = "/src/project"
    t0 = 1_795_000_000.0
    journal = GlobalJournal(os.path.join(state_dir, "events"))
    crashes_file = open(os.path.join(state_dir, "crashes.jsonl"), "w")
    os.chmod(os.path.join(state_dir, "crashes.jsonl"), 0o600)
    seq = 0
    c = 0
    for i in range(runs):
        run_id = run_id_of(i)
        d = os.path.join(state_dir, "runs", run_id)
        os.makedirs(d, mode=0o711, exist_ok=True)
        created = t0 + i * 60
        ended = created + 30
        records = []
        while c < crashes and c * runs // crashes == i:
            records.append(crash_record(c, run_id, created + 10 + len(records) * 0.01, uid))
            c += 1
        for record in records:
            crashes_file.write(compact(record) + "\n")
        workers = [{"pid": 10000 + i, "worker_id": "controller"}, {"pid": 10000, "worker_id": "gw0"},
                   {"pid": 10001, "worker_id": "gw1"}]
        with open(os.path.join(d, "run.json"), "w") as f:
            json.dump({"argv": argv, "created_at": created, "cwd": cwd, "ended_at": ended, "hostname": "ci1",
                       "owner_uid": uid, "pid": 10000 + i, "run_id": run_id, "status": "ended",
                       "supervised": True, "workers": workers}, f, indent=2)
        returncode = 1 if records else 0
        text = f"exited with code 1, {len(records)} crash(es)" if records else "exited with code 0"
        with open(os.path.join(d, "job.json"), "w") as f:
            json.dump({"attempt": 1, "attempt_kind": "full", "attempt_only": "", "command_exit_code": returncode,
                       "command_signal": None, "created_at": created, "ended_at": ended, "monitor_pid": 20000 + i,
                       "monitor_start_time": 123456 + i,
                       "plan": {"excluded": [], "passed_on_rerun": [], "rerun_crashed": 0, "rerun_queue": [],
                                "reruns_done": {}, "retries_done": 0, "retry_crashed": 0, "retry_pending": False},
                       "report_errors": [], "returncode": returncode, "signal": None,
                       "spec": {"argv": argv, "crash_log": "", "cwd": cwd, "env": env, "fail_on_flaky": False,
                                "junit": "", "name": "", "pause_on_failure": False, "rerun_crashed": 0,
                                "retry_crashed": 0, "runner": "pytest"},
                       "state": "done", "stop_requested": False, "tests_reported": True, "text": text},
                      f, indent=2, sort_keys=True)
        with open(os.path.join(d, "exit.json"), "w") as f:
            f.write(compact({"state": "exited", "pid": 10000 + i, "started_at": created + 0.02, "ended_at": ended,
                             "signal": None, "exit_code": returncode, "command": PYTHON}))
        with open(os.path.join(d, "output.log"), "w") as f:
            f.write("." * tests_per_run + f"\n{tests_per_run} passed in 0.05s\n")
        with open(os.path.join(d, "events.jsonl"), "w") as f:
            for event, t, data in run_events(run_id, created, ended, uid, argv, cwd, tests_per_run, records):
                seq += 1
                journal.append(seq, t, event, run_id, uid, data)
                f.write(compact(dict(sorted(dict(data, event=event, run_id=run_id, seq=seq, time=t).items()))) + "\n")
    journal.close()
    crashes_file.close()
    return {"events": journal.events, "journal_bytes": journal.bytes,
            "crashes_bytes": os.path.getsize(os.path.join(state_dir, "crashes.jsonl"))}


def journal_size(state_dir):
    """(events, bytes) of an existing global journal (for --keep)."""
    events, size = 0, 0
    d = os.path.join(state_dir, "events")
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if name.endswith(".jsonl"):
            with open(os.path.join(d, name), "rb") as f:
                for _ in f:
                    events += 1
            size += os.path.getsize(os.path.join(d, name))
    return events, size


# -- talking to lpd, and reading it from /proc -------------------------------

class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1

    def request(self, op, **fields):
        self.sock.sendall((json.dumps(dict(fields, id=self.next_id, op=op)) + "\n").encode())
        self.next_id += 1
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError(f"lpd closed the connection during {op}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line), len(line) + 1

    def close(self):
        self.sock.close()


def cpu_seconds(pid):
    """The CPU time of `pid` (its threads, not its children), in seconds:
    the sum of /proc/<pid>/task/*/schedstat's first field (nanoseconds on
    a CPU), since utime + stime in /proc/<pid>/stat move in 10 ms clock
    ticks, a whole microsecond per test over 10,000 tests. lpd's threads
    live as long as it does, so none is missed; without schedstat (a
    kernel without CONFIG_SCHED_INFO), utime + stime."""
    try:
        total = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(pid):
    """cutime + cstime of `pid`: the CPU of the children it waited for (and
    of theirs), from /proc/<pid>/stat, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def mb(kib):
    """KiB (as /proc prints them) in MB (10^6 bytes), the issue's unit."""
    return kib * 1024 / 1e6


def reset_peak_rss(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0, as the process's owner
    or root). Returns False when the kernel refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Daemon:
    def __init__(self, build, root, extra_args=()):
        self.extra_args = list(extra_args)
        self.lpd = os.path.join(build, "lpd")
        self.lpctl = os.path.join(build, "lpctl")
        self.root = root
        self.socket = os.path.join(root, "lpd.sock")
        self.state = os.path.join(root, "state")
        self.proc = None
        self.start_cpu = None

    def start(self, timeout):
        """Spawns lpd and returns seconds from spawn to the first answered
        ping; the wait is lpd's readiness pipe, then one round trip."""
        read_fd, write_fd = os.pipe()
        log = open(os.path.join(self.root, "lpd.log"), "ab")
        began = time.monotonic()
        self.proc = subprocess.Popen(
            [self.lpd, "start", "--foreground", "--socket", self.socket, "--state-dir", self.state,
             "--log-level", "warn", "--ready-fd", str(write_fd), *self.extra_args],
            pass_fds=[write_fd], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        os.close(write_fd)
        log.close()
        report = read_readiness(read_fd, began + timeout)
        if report is None:
            self.kill()
            return None  # gave up
        if not report.startswith(b"READY"):
            raise RuntimeError(f"lpd did not start: {report!r}")
        client = Client(self.socket)
        client.request("hello", role="bench", protocol=1)
        reply, _ = client.request("ping")
        elapsed = time.monotonic() - began
        self.start_cpu = cpu_seconds(self.proc.pid)  # on a loaded machine, the wall time also waits for a CPU
        client.close()
        assert reply.get("ok"), reply
        return elapsed

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=120)
            self.proc = None

    def kill(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait(timeout=120)
            self.proc = None


def fmt_target(value, unit, target):
    if value is None:
        return f"gave up        (target <= {target:g} {unit})"
    return f"{value:10.1f} {unit}  (target <= {target:g} {unit})"


def test_file(directory, name, tests):
    """A module of `tests` trivial passing tests; returns its name."""
    with open(os.path.join(directory, name), "w") as f:
        f.write(f"import pytest\n\n\n@pytest.mark.parametrize('i', range({tests}))\ndef test_trivial(i):\n    pass\n")
    return name


def clean_env(**extra):
    """The bench's environment without anything that would load a pytest
    plugin or point at another lpd, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTEST_PLUGINS", "PYTEST_ADDOPTS", "PYTHONPATH") and not k.startswith("LPD_")
           and not k.startswith("PYTEST_ABORT_")}
    env.update(extra)
    return env


def run_logged(cmd, cwd, env, log_path):
    """Runs `cmd` with stdout and stderr into `log_path`; returns (wall
    seconds, exit status, output, CPU seconds of the process and of the
    descendants it waited for, from wait4)."""
    with open(log_path, "wb") as log:
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
    with open(log_path, errors="replace") as f:
        return wall, proc.returncode, f.read(), usage.ru_utime + usage.ru_stime


def check_passed(label, rc, output, tests):
    if rc != 0 or f"{tests} passed" not in output:
        print(output[-3000:])
        raise SystemExit(f"{label}: exit {rc}, no '{tests} passed' in its output")


# -- a. restart ---------------------------------------------------------------

def figure_restart(daemon, repeat, timeout):
    """Restart time to the first answered ping, `repeat` restarts (the page
    cache is warm after the first, as on a host that restarts lpd)."""
    times, cpus = [], []
    for _ in range(repeat):
        t = daemon.start(timeout)
        if t is None:
            print(f"a. restart to first ping: no answer within {timeout} s")
            return None
        times.append(t)
        cpus.append(daemon.start_cpu)
        daemon.stop()
    print(f"a. restart to first ping, each: {', '.join(f'{t * 1000:.0f} ms' for t in times)} "
          f"(lpd's CPU by then: {', '.join(f'{c * 1000:.0f} ms' for c in cpus)})")
    print(f"a. restart to first ping, best: {fmt_target(min(times) * 1000, 'ms', RESTART_TARGET_S * 1000)}")
    return min(times)


def figure_rss(daemon):
    print(f"   lpd RSS after restart, with the history: {mb(status_kib(daemon.proc.pid, 'VmRSS')):.1f} MB")


# -- b. first pages and whole lists ------------------------------------------

def first_page(daemon, label, op, items, fields, lpctl_args, repeat=20, spawns=5):
    """`op`'s first page over a connected socket (median of `repeat`), and
    `lpctl <lpctl_args>` from spawn to its first printed line (median of
    `spawns`; lpctl prints nothing, not even a header, before lpd's first
    page came)."""
    client = Client(daemon.socket)
    client.request("hello", role="bench", protocol=1)
    latencies, size, count, error = [], 0, 0, None
    for _ in range(repeat):
        began = time.monotonic()
        reply, size = client.request(op, **fields)
        latencies.append((time.monotonic() - began) * 1000)
        if not reply.get("ok"):
            error = reply.get("error")
            break
        count = len(reply["result"][items])
    client.close()
    if error:
        print(f"b. {op} first page: error {error.get('code')}: {error.get('message', '')[:100]}")
    else:
        print(f"b. {op} first page: {count} {items}, {size / 1024:.0f} KiB reply; median of {repeat}: "
              f"{fmt_target(statistics.median(latencies), 'ms', FIRST_PAGE_TARGET_MS)}")
    firsts = []
    for _ in range(spawns):
        began = time.monotonic()
        proc = subprocess.Popen([daemon.lpctl, "--socket", daemon.socket, *lpctl_args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        line = proc.stdout.readline()
        firsts.append((time.monotonic() - began) * 1000)
        proc.kill()
        _, err = proc.communicate()
        if not line:
            print(f"b. lpctl {label}: no line; stderr: {err.decode(errors='replace').strip()[:200]}")
            return
    print(f"b. lpctl {label}, spawn to its first line, median of {spawns}: "
          f"{fmt_target(statistics.median(firsts), 'ms', FIRST_PAGE_TARGET_MS)}")


def all_pages(daemon, label, lpctl_args, expected):
    """Every item through `lpctl --json <lpctl_args>` (lpctl pages): count,
    size, time. lpctl prints either one array or one document a line."""
    began = time.monotonic()
    result = subprocess.run([daemon.lpctl, "--socket", daemon.socket, "--json", *lpctl_args], capture_output=True)
    elapsed = time.monotonic() - began
    if result.returncode != 0:
        print(f"   lpctl --json {label}: exit {result.returncode}: "
              f"{result.stderr.decode(errors='replace').strip()[:200]}")
        return
    text = result.stdout.decode()
    try:
        records = json.loads(text)
    except json.JSONDecodeError:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    print(f"   lpctl --json {label}, every page: {len(records)} of {expected}, {len(text) / 1e6:.1f} MB "
          f"in {elapsed:.2f} s")


def figure_crashes_first_page(daemon):
    first_page(daemon, "crashes", "crash.list", "crashes", {}, ["crashes"])


def figure_crashes_all(daemon, expected):
    all_pages(daemon, "crashes", ["crashes"], expected)


def figure_events_first_page(daemon):
    first_page(daemon, "events", "events.list", "events", {}, ["events"])


def figure_events_all(daemon, expected):
    all_pages(daemon, "events", ["events"], expected)


def figure_runs_first_page(daemon):
    first_page(daemon, "runs -a", "run.list", "runs", {"all": True}, ["runs", "-a"])


def figure_runs_all(daemon, expected):
    all_pages(daemon, "runs -a", ["runs", "-a"], expected)


# -- c. a big run with its JUnit ---------------------------------------------

def figure_junit_run(daemon, work, tests, workers):
    """One `lpctl run --junit` of `tests` trivial tests: the JUnit complete?
    lpd's CPU per test and its peak RSS over the run."""
    name = test_file(work, "test_junit_run.py", tests)
    junit = os.path.join(work, "junit.xml")
    cmd = [daemon.lpctl, "--socket", daemon.socket, "run", "--junit", junit, "--",
           PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(["-n", str(workers)] if workers else []), name]
    pid = daemon.proc.pid
    rss_before = status_kib(pid, "VmRSS")
    peak_reset = reset_peak_rss(pid)
    cpu0 = cpu_seconds(pid)
    wall, rc, output, _ = run_logged(cmd, work, clean_env(), os.path.join(work, "junit-run.log"))
    cpu = cpu_seconds(pid) - cpu0
    peak = status_kib(pid, "VmHWM")
    rss_after = status_kib(pid, "VmRSS")
    check_passed("lpctl run --junit", rc, output, tests)
    size = os.path.getsize(junit)
    root = ET.parse(junit).getroot()
    cases = root.iter("testcase")
    count, bad = 0, 0
    for case in cases:
        count += 1
        if any(child.tag in ("failure", "error", "skipped") for child in case):
            bad += 1
    label = f"pytest -n {workers}" if workers else "pytest"
    print(f"c. lpctl run --junit, {tests} tests ({label}): {wall:.1f} s; JUnit {size / 1e6:.1f} MB, "
          f"{count} testcases ({bad} not passed): {'complete' if count == tests and bad == 0 else 'INCOMPLETE'} "
          f"(target: {tests} passed testcases)")
    print(f"c. lpd CPU per test over the run: {fmt_target(cpu / tests * 1e6, 'us', CPU_PER_TEST_TARGET_US)}"
          f"  ({cpu:.2f} s in all)")
    print(f"c. lpd peak RSS over the run (VmHWM{'' if peak_reset else ', since lpd started: clear_refs refused'}): "
          f"{mb(peak):.1f} MB  (RSS {mb(rss_before):.1f} MB before, {mb(rss_after):.1f} MB after; no target)")


# -- d. idle connections -----------------------------------------------------

def figure_idle_connections(build, connections, heavy):
    """bench/idle_connections_bench.py as it is (its own private lpd), its
    output indented, and the idle figure against the issue's target."""
    cmd = [PYTHON, os.path.join(HERE, "idle_connections_bench.py"), "--build", build,
           "--connections", str(connections), "--heavy", str(heavy)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=clean_env())
    for line in result.stdout.splitlines():
        print(f"   | {line}")
    if result.returncode != 0:
        print(f"d. idle_connections_bench.py: exit {result.returncode}: {result.stderr.strip()[-500:]}")
        return
    for line in result.stdout.splitlines():
        if line.startswith("RSS with ") and "idle connections:" in line:
            measured = line.split("RSS with ", 1)[1].split()[0]
            mib = float(line.split("idle connections:", 1)[1].split()[0])
            size = "" if measured == "10,000" else f"; the target is for 10,000, {measured} measured"
            print(f"d. lpd RSS with {measured} idle connections: "
                  f"{fmt_target(mb(mib * 1024), 'MB', IDLE_RSS_TARGET_MB)}{size}")
            return
    print("d. idle_connections_bench.py printed no 'RSS with N idle connections' line")


# -- e. lpd's cost per test against pytest-abort's ---------------------------

PROBE = '''
import json
import os


def test_marker_is_written(request):
    """The crash-attribution plugin under measurement has written this
    test's marker before it runs (so it is loaded and working)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if os.environ["SCALE_BENCH_PROBE"] == "pytest-abort":
        path = os.path.join(os.environ["PYTEST_ABORT_LAST_RUNNING_DIR"], f"last_running_{worker or 'main'}.json")
        with open(path) as f:
            assert json.load(f)["nodeid"] == request.node.nodeid
    else:
        with open(os.path.join(os.getcwd(), ".current_test" + worker)) as f:
            assert f.read() == request.node.nodeid
'''


def abort_arm(work, checkout):
    """(pytest arguments, environment, label, description) of the
    pytest-abort arm: the real plugin from `checkout`, else shim_cost_bench.py's
    marker-file plugin with one marker per xdist worker."""
    if checkout:
        marker_dir = os.path.join(work, "last_running")
        os.makedirs(marker_dir, exist_ok=True)
        head = subprocess.run(["git", "-C", checkout, "log", "-1", "--format=%h %cs"], capture_output=True,
                              text=True).stdout.strip()
        return (["-p", "pytest_abort.plugin"],
                {"PYTHONPATH": os.path.abspath(checkout), "PYTEST_ABORT_LAST_RUNNING_DIR": marker_dir,
                 "SCALE_BENCH_PROBE": "pytest-abort"},
                "pytest-abort", f"pytest-abort from {checkout}{f' ({head})' if head else ''}")
    sys.path.insert(0, HERE)
    from shim_cost_bench import MARKER_PLUGIN
    # One marker per xdist worker, as pytest-abort's PYTEST_ABORT_LAST_RUNNING_DIR.
    per_worker = MARKER_PLUGIN.replace('".current_test")',
                                       '".current_test" + os.environ.get("PYTEST_XDIST_WORKER", ""))')
    assert per_worker != MARKER_PLUGIN, "shim_cost_bench.MARKER_PLUGIN changed: update abort_arm()"
    with open(os.path.join(work, "marker_plugin.py"), "w") as f:
        f.write(per_worker)
    return (["-p", "marker_plugin"], {"PYTHONPATH": work, "SHIM_BENCH_MARKER": "1", "SCALE_BENCH_PROBE": "marker"},
            "marker files (fallback)",
            "FALLBACK: no pytest-abort checkout (--pytest-abort), shim_cost_bench.py's marker-file plugin instead")


def figure_run_overhead(daemon, work, tests, rounds, workers, checkout):
    """Three arms over the same `tests` trivial tests under `pytest -n
    workers`, alternating in each round: plain pytest, `lpctl run --
    pytest`, pytest with pytest-abort. lpd's CPU is read from /proc around
    the lpd arm, spawn to exit (`during`), and until the end of the round
    (`with after`: what lpd does once lpctl is gone, e.g. journal flushes,
    is lpd's cost too; the bench does not talk to lpd meanwhile)."""
    name = test_file(work, "test_overhead.py", tests)
    with open(os.path.join(work, "test_probe.py"), "w") as f:
        f.write(PROBE)
    abort_args, abort_env, abort_label, abort_text = abort_arm(work, checkout)
    pytest_cmd = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers)]
    arms = {
        "plain": (pytest_cmd + ["-p", "no:lpd_pytest", name], clean_env()),
        "lpd": ([daemon.lpctl, "--socket", daemon.socket, "run", "--"] + pytest_cmd + [name], clean_env()),
        "abort": (pytest_cmd + ["-p", "no:lpd_pytest"] + abort_args + [name], clean_env(**abort_env)),
    }
    probe = pytest_cmd + ["-p", "no:lpd_pytest"] + abort_args + ["test_probe.py"]
    _, rc, output, _ = run_logged(probe, work, clean_env(**abort_env), os.path.join(work, "probe.log"))
    check_passed("pytest-abort arm's probe (is its marker written?)", rc, output, 1)
    print(f"e. {tests} trivial tests, pytest -n {workers}, {rounds} round(s) of plain / lpctl run / crash markers; "
          f"crash markers: {abort_text} (probe test: marker written)")

    pid = daemon.proc.pid
    table = []
    names = list(arms)
    for r in range(rounds):
        sums = {}
        # The order turns each round (plain, lpd, abort; lpd, abort, plain;
        # ...), and each arm runs twice in it, in mirrored order (A B C C B
        # A): a machine that slows down or speeds up steadily during a
        # round then favours no arm, and one that does so across rounds
        # favours none either.
        order = names[r % len(names):] + names[:r % len(names)]
        own0, children0 = cpu_seconds(pid), children_cpu_seconds(pid)
        for turn, arm in enumerate(order + order[::-1]):
            cmd, env = arms[arm]
            own_before = cpu_seconds(pid)
            wall, rc, output, waited_cpu = run_logged(cmd, work, env,
                                                      os.path.join(work, f"overhead-{arm}-{r}-{turn}.log"))
            check_passed(f"arm {arm}", rc, output, tests)
            sums[arm] = sums.get(arm, 0.0) + wall
            # What the arm ran, in CPU: pytest and its workers (waited for);
            # for the lpd arm lpctl (it has no children), plus below lpd
            # and what it waited for (lpd-monitor, pytest, its workers).
            sums[f"{arm}_cpu"] = sums.get(f"{arm}_cpu", 0.0) + waited_cpu
            if arm == "lpd":
                sums["lpd_cpu_during"] = sums.get("lpd_cpu_during", 0.0) + cpu_seconds(pid) - own_before
        row = {key: value / 2 for key, value in sums.items()}  # each arm ran twice
        row["lpctl_cpu"] = row["lpd_cpu"]
        # The end of the round: lpd has long reaped the runs' monitors; what
        # it did between the two lpd runs (nothing asked it) counts too.
        row["lpd_cpu_after"] = (cpu_seconds(pid) - own0) / 2
        row["lpd_cpu"] += row["lpd_cpu_after"] + (children_cpu_seconds(pid) - children0) / 2
        table.append(row)
        print(f"   round {r + 1}: wall plain {row['plain']:6.2f} s, lpctl run {row['lpd']:6.2f} s, "
              f"{abort_label} {row['abort']:6.2f} s; CPU of all their processes {row['plain_cpu']:6.2f} s, "
              f"{row['lpd_cpu']:6.2f} s, {row['abort_cpu']:6.2f} s; lpd's CPU "
              f"{row['lpd_cpu_during'] / tests * 1e6:.1f} us/test (to the end of the round "
              f"{row['lpd_cpu_after'] / tests * 1e6:.1f})")

    def per_test_us(key):
        return statistics.median(row[key] for row in table) / tests * 1e6

    def over_plain(arm, unit=""):
        """Per round: the arm's cost over plain pytest in the same round, us/test."""
        return [(row[arm + unit] - row["plain" + unit]) / tests * 1e6 for row in table]

    def over_plain_us(arm, unit=""):
        return statistics.median(over_plain(arm, unit))

    print(f"e. plain pytest -n {workers}, median: {per_test_us('plain'):.1f} us/test wall, "
          f"{per_test_us('plain_cpu'):.1f} us/test CPU")
    print(f"e. lpd CPU per test, median (spawn to exit of lpctl): "
          f"{fmt_target(per_test_us('lpd_cpu_during'), 'us', CPU_PER_TEST_TARGET_US)}")
    print(f"   lpd CPU per test, median (to the end of the round):"
          f"{fmt_target(per_test_us('lpd_cpu_after'), 'us', CPU_PER_TEST_TARGET_US)}")
    print(f"   lpctl's own CPU per test (its live output; not lpd's), median: {per_test_us('lpctl_cpu'):.1f} us")
    lpd_cost, abort_cost = over_plain_us("lpd"), over_plain_us("abort")
    lpd_costs, abort_costs = over_plain("lpd"), over_plain("abort")
    print(f"e. wall time over plain pytest, median: lpctl run {lpd_cost:+.1f} us/test, "
          f"{abort_label} {abort_cost:+.1f} us/test")
    print(f"   per round, lpctl run: {' '.join(f'{c:+.0f}' for c in lpd_costs)}; "
          f"{abort_label}: {' '.join(f'{c:+.0f}' for c in abort_costs)} (us/test)")
    print(f"e. lpctl run's wall cost / {abort_label}'s: {cost_ratio(lpd_cost, abort_cost, abort_label)}")
    print(f"   {ratio_interval(lpd_costs, abort_costs)}")
    lpd_cpu, abort_cpu = over_plain_us("lpd", "_cpu"), over_plain_us("abort", "_cpu")
    print(f"   CPU of all the arm's processes over plain pytest, median: lpctl run {lpd_cpu:+.1f} us/test "
          f"(lpd, lpd-monitor, pytest, lpctl), {abort_label} {abort_cpu:+.1f} us/test; "
          f"ratio {cost_ratio(lpd_cpu, abort_cpu, abort_label, target=False)}")


def ratio_interval(costs, references, resamples=2000, seed=13):
    """How far noise could move the wall-cost ratio: the 5th and 95th
    percentiles of median(costs) / median(references) over `resamples`
    bootstrap resamples of the rounds (a round's pair of costs stays
    together), and what they say of the target. A verdict needs the whole
    interval on one side of the target: the wall time of a few seconds on a
    shared 2-core machine moves by more than the cost being measured."""
    import random
    rng = random.Random(seed)
    n = len(costs)
    if n < 3:
        return "interval: needs 3 rounds or more (--overhead-repeat)"
    ratios = []
    for _ in range(resamples):
        picked = [rng.randrange(n) for _ in range(n)]
        reference = statistics.median(references[i] for i in picked)
        if reference > 0:
            ratios.append(statistics.median(costs[i] for i in picked) / reference)
    if len(ratios) < resamples * 0.9:
        return "interval: the reference measured no cost in too many resamples (noise: take more rounds)"
    ratios.sort()
    low, high = ratios[int(0.05 * len(ratios))], ratios[int(0.95 * len(ratios)) - 1]
    if high < WALL_COST_TARGET_RATIO:
        verdict = f"met: the whole interval is under {WALL_COST_TARGET_RATIO:g}"
    elif low >= WALL_COST_TARGET_RATIO:
        verdict = f"NOT MET: the whole interval is at or over {WALL_COST_TARGET_RATIO:g}"
    else:
        verdict = f"not shown either way: the interval spans {WALL_COST_TARGET_RATIO:g} (take more rounds)"
    return f"90% interval of the ratio (bootstrap over the {n} rounds): {low:.2f} .. {high:.2f}; {verdict}"


def cost_ratio(cost, reference, reference_label, target=True):
    """`cost / reference`, with the target beside it when `target`; n/a
    when the reference measured nothing (noise)."""
    if reference <= 0:
        return f"n/a ({reference_label} measured no cost over plain pytest: noise, take more rounds)"
    ratio = cost / reference
    noise = "lpctl run measured below plain pytest: noise, take more rounds" if cost < 0 else ""
    if not target:
        return f"{ratio:.2f}{f' ({noise})' if noise else ''}"
    return (f"{ratio:.2f}  (target < {WALL_COST_TARGET_RATIO:g}: "
            f"{'met' if ratio < WALL_COST_TARGET_RATIO else 'NOT MET'}{'; ' + noise if noise else ''})")


# -- main ---------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "default"),
                        help="directory holding lpd, lpctl and lpd-monitor (and lpd's python/ C module)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for a smoke check: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    parser.add_argument("--figures", default=",".join(FIGURES), help=f"comma-separated subset of {','.join(FIGURES)}")
    parser.add_argument("--runs", type=int, help=f"ended runs in the history (default {FULL['runs']})")
    parser.add_argument("--crashes", type=int, help=f"crash records in the history (default {FULL['crashes']})")
    parser.add_argument("--repeat", type=int, help=f"restarts to time (default {FULL['repeat']})")
    parser.add_argument("--timeout", type=float, default=600, help="give up on a start after this many seconds")
    parser.add_argument("--keep", help="build the history here and keep it (reused when it exists)")
    parser.add_argument("--lpd-arg", action="append", default=None,
                        help="extra `lpd start` argument (repeatable); default: --keep-runs 0 --keep-days 0, so "
                             "retention does not prune the history being measured (an lpd without retention "
                             "options: --lpd-arg=)")
    parser.add_argument("--junit-tests", type=int, help=f"tests in the --junit run (default {FULL['junit_tests']})")
    parser.add_argument("--junit-workers", type=int, default=0, help="pytest -n for the --junit run (default 0: none)")
    parser.add_argument("--connections", type=int, help=f"idle connections (default {FULL['connections']})")
    parser.add_argument("--heavy", type=int, help=f"idle_connections_bench.py --heavy (default {FULL['heavy']})")
    parser.add_argument("--overhead-tests", type=int, help=f"tests per arm (default {FULL['overhead_tests']})")
    parser.add_argument("--overhead-repeat", type=int,
                        help=f"rounds of the three arms (default {FULL['overhead_repeat']})")
    parser.add_argument("--workers", type=int, default=2, help="pytest -n for the cost arms (default 2)")
    parser.add_argument("--pytest-abort", default=os.environ.get("PYTEST_ABORT_SRC"),
                        help="checkout of github.com/ROCm/pytest-abort (default $PYTEST_ABORT_SRC; none: fallback "
                             "marker-file plugin)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    for key, value in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    figures = [f for f in args.figures.split(",") if f]
    unknown = set(figures) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(sorted(unknown))}; choose from {','.join(FIGURES)}")
    if args.pytest_abort and not os.path.isfile(os.path.join(args.pytest_abort, "pytest_abort", "plugin.py")):
        parser.error(f"--pytest-abort {args.pytest_abort}: no pytest_abort/plugin.py there")
    build = os.path.abspath(args.build)
    for binary in ("lpd", "lpctl", "lpd-monitor"):
        if not os.access(os.path.join(build, binary), os.X_OK):
            parser.error(f"no {binary} in {build}")

    print(f"lpd {os.path.join(build, 'lpd')}; {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    root = args.keep or tempfile.mkdtemp(prefix="lpd-scale-", dir="/tmp")
    os.makedirs(root, exist_ok=True)
    extra = ["--keep-runs", "0", "--keep-days", "0"] if args.lpd_arg is None else [a for a in args.lpd_arg if a]
    history = Daemon(build, root, extra)
    fresh_root = os.path.join(root, "fresh")
    shutil.rmtree(fresh_root, ignore_errors=True)
    os.makedirs(fresh_root)
    fresh = Daemon(build, fresh_root, extra)
    try:
        if "restart" in figures or "lists" in figures:
            if not os.path.exists(os.path.join(history.state, "crashes.jsonl")):
                began = time.monotonic()
                written = build_state(history.state, args.runs, args.crashes)
                print(f"history: {args.runs} runs, {args.crashes} crash records "
                      f"({written['crashes_bytes'] / 1e6:.1f} MB crashes.jsonl), {written['events']} events "
                      f"({written['journal_bytes'] / 1e6:.1f} MB global journal), built in "
                      f"{time.monotonic() - began:.1f} s")
                events = written["events"]
            else:
                events, size = journal_size(history.state)
                print(f"history: reused {history.state} ({events} events, {size / 1e6:.1f} MB journal)")
            runs = len(os.listdir(os.path.join(history.state, "runs")))
            with open(os.path.join(history.state, "crashes.jsonl"), "rb") as f:
                crashes = sum(1 for _ in f)
            if "restart" in figures and figure_restart(history, args.repeat, args.timeout) is None:
                return 1
            if "lists" in figures:
                history.start(args.timeout)
                try:
                    figure_rss(history)
                    figure_crashes_first_page(history)
                    figure_events_first_page(history)
                    figure_runs_first_page(history)
                    figure_crashes_all(history, crashes)
                    figure_events_all(history, events)
                    figure_runs_all(history, runs)
                finally:
                    history.stop()
        if "junit" in figures or "overhead" in figures:
            fresh.start(args.timeout)
        if "junit" in figures:
            figure_junit_run(fresh, fresh_root, args.junit_tests, args.junit_workers)
        if "idle" in figures:  # its own lpd; the fresh one waits, idle
            figure_idle_connections(build, args.connections, args.heavy)
        if "overhead" in figures:
            figure_run_overhead(fresh, fresh_root, args.overhead_tests, args.overhead_repeat, args.workers,
                                args.pytest_abort)
        fresh.stop()
    finally:
        history.kill()
        fresh.kill()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            shutil.rmtree(fresh_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
