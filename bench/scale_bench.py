#!/usr/bin/env python3
"""lpd at the scale of a busy CI host (issue 13): a state directory with many
runs and crash records, a real lpd started on it, and what a client sees.

One function per figure; each prints the figure with its target beside it.
No pass/fail: run it on demand and read the numbers.

  state      build_state(): runs/<id>/{run.json,job.json,events.jsonl} for
             --runs ended supervised runs (a few test.finish lines each) and
             --crashes records in crashes.jsonl (~4 KB tracebacks)
  restart    figure_restart(): spawn -> lpd's readiness pipe -> first ping
             answered (target <= 1 s)
  crashes    figure_crashes_first_page(): crash.list first page over the
             socket, and `lpctl crashes` spawn -> first line (<= 50 ms)
             figure_crashes_all(): every page through `lpctl --json crashes`
  memory     figure_rss(): lpd's RSS once it answers

Usage: bench/scale_bench.py [--build build/default] [--runs 10000] [--crashes 10000]
       [--repeat 3] [--keep DIR]
"""

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

RESTART_TARGET_S = 1.0
FIRST_PAGE_TARGET_MS = 50.0


# -- the state directory -------------------------------------------------------

def run_id_of(i):
    return f"20261101-{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}-{i:06x}"


def traceback_text(i, size=4096):
    """A faulthandler-style traceback of about `size` bytes."""
    lines = ["Fatal Python error: Segmentation fault", "", f"Current thread 0x{0x7f0000000000 + i:x} (most recent call first):"]
    n = 0
    while sum(len(l) + 1 for l in lines) < size:
        lines.append(f'  File "/src/project/module_{n % 17}/deep/path/file_{n}.py", line {100 + n} in function_{n}')
        n += 1
    return "\n".join(lines)[:size]


def build_state(state_dir, runs, crashes, tests_per_run=5, uid=None):
    """Writes the layout lpd itself writes (see daemon/state_store.h)."""
    uid = os.getuid() if uid is None else uid
    os.makedirs(os.path.join(state_dir, "runs"), mode=0o700, exist_ok=True)
    os.chmod(state_dir, 0o700)
    env = [f"VAR_{k}=value-{k}-" + "x" * 40 for k in range(40)]  # a CI job's environment, ~3 KB
    t0 = 1_795_000_000.0
    for i in range(runs):
        run_id = run_id_of(i)
        d = os.path.join(state_dir, "runs", run_id)
        os.makedirs(d, mode=0o711, exist_ok=True)
        created = t0 + i * 60
        ended = created + 30
        with open(os.path.join(d, "run.json"), "w") as f:
            json.dump({"run_id": run_id, "pid": 10000 + i, "hostname": "ci1", "cwd": "/src/project",
                       "argv": ["pytest", "-n", "2", "tests"], "created_at": created, "status": "ended",
                       "owner_uid": uid, "workers": [{"worker_id": "controller", "pid": 10000 + i}],
                       "supervised": True, "ended_at": ended}, f, indent=2)
        with open(os.path.join(d, "job.json"), "w") as f:
            json.dump({"spec": {"argv": ["pytest", "-n", "2", "tests"], "cwd": "/src/project", "env": env,
                                "name": "", "retry_crashed": 0, "junit": "", "crash_log": "",
                                "pause_on_failure": False},
                       "state": "done", "attempt": 1, "deselected": [], "monitor_pid": 20000 + i,
                       "monitor_start_time": 123456 + i, "returncode": 1, "signal": None,
                       "text": "exited with code 1, 1 crash(es)", "report_errors": [],
                       "created_at": created, "ended_at": ended}, f, indent=2)
        with open(os.path.join(d, "events.jsonl"), "w") as f:
            seq = i * 20
            for t in range(tests_per_run):
                nodeid = f"tests/test_mod_{t}.py::test_case_{t}"
                for event in ("test.start", "test.finish"):
                    seq += 1
                    line = {"nodeid": nodeid, "worker_id": "gw0", "pid": 10000 + i, "attempt": 1, "seq": seq,
                            "time": created + t, "run_id": run_id, "event": event}
                    if event == "test.finish":
                        line.update(outcome="passed", phase="call", duration=0.01, message="")
                    f.write(json.dumps(line) + "\n")
    with open(os.path.join(state_dir, "crashes.jsonl"), "w") as f:
        for c in range(crashes):
            run_id = run_id_of(c % max(runs, 1))
            nodeid = f"tests/test_crashy_{c % 50}.py::test_segfault[{c}]"
            f.write(json.dumps({
                "crash_id": c + 1, "run_id": run_id, "nodeid": nodeid, "where": "test", "phase": "call",
                "worker_id": "gw0", "pid": 30000 + c, "signal": 11, "signal_name": "SIGSEGV", "exit_code": None,
                "reason": f"killed by SIGSEGV while running {nodeid} (call)", "traceback": traceback_text(c),
                "crash_time": t0 + c * 60 + 10, "duration": 0.5, "attempt": 1, "owner_uid": uid}) + "\n")
    os.chmod(os.path.join(state_dir, "crashes.jsonl"), 0o600)


# -- talking to lpd ------------------------------------------------------------

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


class Daemon:
    def __init__(self, build, root, extra_args=()):
        self.extra_args = list(extra_args)
        self.lpd = os.path.join(build, "lpd")
        self.lpctl = os.path.join(build, "lpctl")
        self.root = root
        self.socket = os.path.join(root, "lpd.sock")
        self.state = os.path.join(root, "state")
        self.proc = None

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
        report = b""
        import select
        while True:
            ready, _, _ = select.select([read_fd], [], [], max(0.0, began + timeout - time.monotonic()))
            if not ready:
                os.close(read_fd)
                self.kill()
                return None  # gave up
            data = os.read(read_fd, 4096)
            if not data:
                break
            report += data
        os.close(read_fd)
        if not report.startswith(b"READY"):
            raise RuntimeError(f"lpd did not start: {report!r}")
        client = Client(self.socket)
        client.request("hello", role="bench", protocol=1)
        reply, _ = client.request("ping")
        elapsed = time.monotonic() - began
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
        return f"gave up        (target <= {target} {unit})"
    return f"{value:10.1f} {unit}  (target <= {target} {unit})"


# -- one function per figure ---------------------------------------------------

def figure_restart(daemon, repeat, timeout):
    """Restart time to the first answered ping, `repeat` restarts (the page
    cache is warm after the first, as on a host that restarts lpd)."""
    times = []
    for _ in range(repeat):
        t = daemon.start(timeout)
        if t is None:
            print(f"restart to first ping: no answer within {timeout} s")
            return None
        times.append(t)
        daemon.stop()
    print(f"restart to first ping, each: {', '.join(f'{t * 1000:.0f} ms' for t in times)}")
    print(f"restart to first ping, best: {fmt_target(min(times) * 1000, 'ms', RESTART_TARGET_S * 1000)}")
    return min(times)


def figure_crashes_first_page(daemon, repeat=20):
    """crash.list's first page over a connected socket, and `lpctl crashes`
    from spawn to its first printed line."""
    client = Client(daemon.socket)
    client.request("hello", role="bench", protocol=1)
    latencies, size, count, error = [], 0, 0, None
    for _ in range(repeat):
        began = time.monotonic()
        reply, size = client.request("crash.list")
        latencies.append((time.monotonic() - began) * 1000)
        if not reply.get("ok"):
            error = reply.get("error")
            break
        count = len(reply["result"]["crashes"])
    client.close()
    if error:
        print(f"crash.list first page: error {error.get('code')}: {error.get('message', '')[:100]}")
    else:
        print(f"crash.list first page: {count} records, {size / 1024:.0f} KiB reply")
        print(f"crash.list first page, median: {fmt_target(statistics.median(latencies), 'ms', FIRST_PAGE_TARGET_MS)}")
    firsts = []
    for _ in range(5):
        began = time.monotonic()
        proc = subprocess.Popen([daemon.lpctl, "--socket", daemon.socket, "crashes"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        line = proc.stdout.readline()
        firsts.append((time.monotonic() - began) * 1000)
        proc.kill()
        proc.communicate()
        if not line:
            break
    print(f"lpctl crashes, spawn to its first line, median: {fmt_target(statistics.median(firsts), 'ms', FIRST_PAGE_TARGET_MS)}")


def figure_crashes_all(daemon, expected):
    """Every record through `lpctl --json crashes` (all pages)."""
    began = time.monotonic()
    result = subprocess.run([daemon.lpctl, "--socket", daemon.socket, "--json", "crashes"], capture_output=True)
    elapsed = time.monotonic() - began
    if result.returncode != 0:
        print(f"lpctl --json crashes: exit {result.returncode}: {result.stderr.decode(errors='replace').strip()[:200]}")
        return
    text = result.stdout.decode()
    try:
        records = json.loads(text)
    except json.JSONDecodeError:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    print(f"lpctl --json crashes: {len(records)} of {expected} records, {len(text) / 1e6:.1f} MB in {elapsed:.2f} s")


def figure_rss(daemon):
    with open(f"/proc/{daemon.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                print(f"lpd RSS after restart: {int(line.split()[1]) / 1024:.1f} MB")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "default"))
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--crashes", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3, help="restarts to time")
    parser.add_argument("--timeout", type=float, default=600, help="give up on a start after this many seconds")
    parser.add_argument("--keep", help="build the state here and keep it (reused when it exists)")
    parser.add_argument("--lpd-arg", action="append", default=None,
                        help="extra `lpd start` argument (repeatable); default: --keep-runs 0 --keep-days 0, so "
                             "retention does not prune the history being measured (an lpd without retention "
                             "options: --lpd-arg=)")
    args = parser.parse_args()

    root = args.keep or tempfile.mkdtemp(prefix="lpd-scale-", dir="/tmp")
    os.makedirs(root, exist_ok=True)
    extra = ["--keep-runs", "0", "--keep-days", "0"] if args.lpd_arg is None else [a for a in args.lpd_arg if a]
    daemon = Daemon(os.path.abspath(args.build), root, extra)
    try:
        if not os.path.exists(os.path.join(daemon.state, "crashes.jsonl")):
            began = time.monotonic()
            build_state(daemon.state, args.runs, args.crashes)
            print(f"state: {args.runs} runs, {args.crashes} crash records "
                  f"({os.path.getsize(os.path.join(daemon.state, 'crashes.jsonl')) / 1e6:.1f} MB crashes.jsonl), "
                  f"built in {time.monotonic() - began:.1f} s")
        if figure_restart(daemon, args.repeat, args.timeout) is None:
            return 1
        daemon.start(args.timeout)
        try:
            figure_rss(daemon)
            figure_crashes_first_page(daemon)
            figure_crashes_all(daemon, args.crashes)
        finally:
            daemon.stop()
    finally:
        daemon.kill()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
