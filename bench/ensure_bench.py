#!/usr/bin/env python3
"""Side-by-side benchmark of `ensure` for a helper server: lpd against
Debian's pytest-xprocess, on the same helper script, in one run.

(a) time from the helper writing its ready line (it prints a CLOCK_MONOTONIC
    timestamp in that line) to ensure returning to the caller;
(b) ensure when the helper already runs, with a small log and a 60 MB log.

lpd is measured in-process and through the `lpctl` command (a process
started per call, included in the time). In-process, (a) uses the Python
client's proc.ensure request; (b) makes the same call on both sides,
`XProcess.ensure(name, Starter)` with one Starter class, through lpd's
`xprocess`/`lpd_process` fixture object and pytest-xprocess's, interleaved.

Usage: /usr/bin/python3 bench/ensure_bench.py [--build build/default] [--runs 30]"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
HELPER = os.path.join(REPO, "tests", "e2e", "helpers", "helper_server.py")
PATTERN = r"ready to accept connections"
READY_T = re.compile(r"ready to accept connections t=([0-9.]+)")
sys.path.insert(0, os.path.join(REPO, "shim", "python"))

from lpd_pytest.client import Connection  # noqa: E402


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def fmt(values):
    ms = [v * 1000 for v in values]
    return f"p50 {pct(ms, 0.5):9.3f} ms   p95 {pct(ms, 0.95):9.3f} ms   (n={len(ms)})"


def ready_time(log_path):
    with open(log_path, errors="replace") as f:
        stamps = READY_T.findall(f.read())
    return float(stamps[-1])


class LpdUnderBench:
    def __init__(self, build):
        self.lpd = os.path.join(build, "lpd")
        self.lpctl = os.path.join(build, "lpctl")
        self.root = tempfile.mkdtemp(prefix="lpd-bench-", dir="/tmp")
        self.socket = os.path.join(self.root, "lpd.sock")
        self.state = os.path.join(self.root, "state")
        subprocess.run([self.lpd, "start", "--socket", self.socket, "--state-dir", self.state], check=True,
                       stdout=subprocess.DEVNULL)
        self.conn = Connection(self.socket, role="cli")
        self.pid = self.conn.request("status")["pid"]
        # lpd's own `xprocess` fixture object, in the global scope as the
        # other calls here (its control directories under self.root).
        from lpd_pytest.xprocess import XProcess
        self.fixture = XProcess(rootdir=os.path.join(self.root, "xprocess"), socket_path=self.socket, scope="")

    def fixture_ensure(self, name, starter):
        """What `xprocess.ensure(name, Starter)` costs under lpd's fixture."""
        result = self.fixture.ensure(name, starter)
        self.fixture.resources.clear()  # the fixture's teardown bookkeeping, not its ensure
        return result

    def fields(self, name, extra_args=(), restart=False):
        return {"name": name, "pattern": PATTERN, "argv": [sys.executable, HELPER, *extra_args], "cwd": "/tmp",
                "env": dict(os.environ), "timeout": 120, "restart": restart}

    def ensure(self, name, extra_args=(), restart=False):
        return self.conn.request("proc.ensure", self.fields(name, extra_args, restart), timeout=None)

    def lpctl_ensure(self, name, extra_args=()):
        # --scope '': the global scope, where the in-process ensure (no scope) puts it.
        subprocess.run([self.lpctl, "--socket", self.socket, "ensure", name, "--scope", "", "--cwd", "/tmp", "--pattern", PATTERN, "--",
                        sys.executable, HELPER, *extra_args], check=True, stdout=subprocess.DEVNULL)

    def kill(self, name):
        self.conn.request("proc.kill", {"name": name, "grace": 5}, timeout=60)

    def log_path(self, name):
        """The current start's log (one log per start since issue 14)."""
        return self.conn.request("proc.info", {"name": name})["log_path"]

    def close(self):
        self.conn.request("proc.kill_all", {}, timeout=60)
        self.fixture.close()
        self.conn.close()
        os.kill(self.pid, signal.SIGTERM)
        fd = os.pidfd_open(self.pid)
        import select
        select.select([fd], [], [], 30)
        os.close(fd)
        shutil.rmtree(self.root, ignore_errors=True)


def make_starter(extra_args, max_lines):
    from xprocess import ProcessStarter

    class Starter(ProcessStarter):
        pattern = PATTERN
        args = [sys.executable, HELPER, *extra_args]
        timeout = 120
        max_read_lines = max_lines
        popen_kwargs = {"cwd": "/tmp"}  # where the other calls here run it

    return Starter


class XprocessUnderBench:
    def __init__(self):
        import py
        from xprocess import XProcess

        self.root = tempfile.mkdtemp(prefix="xprocess-bench-", dir="/tmp")
        self.xp = XProcess(types.SimpleNamespace(), py.path.local(self.root),
                           log=types.SimpleNamespace(debug=lambda *a: None))

    def ensure(self, name, extra_args=(), max_lines=50, starter=None):
        return self.xp.ensure(name, starter or make_starter(extra_args, max_lines))

    def forget(self):
        """Closes what an ensure opened (its log handles), as the fixture's
        teardown does: pytest-xprocess's bookkeeping, not its ensure."""
        self.xp._force_clean_up()
        self.xp.resources.clear()

    def kill(self, name):
        self.xp.getinfo(name).terminate()
        self.forget()

    def close(self):
        for name in os.listdir(self.root):
            self.xp.getinfo(name).terminate()
        self.xp._force_clean_up()
        shutil.rmtree(self.root, ignore_errors=True)


def bench_ready_latency(lpd, xp, runs):
    lpd_inproc, lpd_cli, xp_times = [], [], []
    for i in range(runs):
        r = lpd.ensure("a")
        lpd_inproc.append(time.monotonic() - ready_time(r["log_path"]))
        lpd.kill("a")
        lpd.lpctl_ensure("a")
        done = time.monotonic()
        lpd_cli.append(done - ready_time(lpd.log_path("a")))
        lpd.kill("a")
        pid, log = xp.ensure("a")
        xp_times.append(time.monotonic() - ready_time(str(log)))
        xp.kill("a")
    return lpd_inproc, lpd_cli, xp_times


def bench_reuse(lpd, xp, runs, name, extra_args):
    """(b): the same call on both sides, `xprocess.ensure(name, Starter)`
    with one Starter class, through lpd's fixture object and through
    pytest-xprocess's, interleaved (the order alternating each round; each
    side's per-call bookkeeping, the fixture teardown's part, left out of
    the time); then the lpctl process per call in its own loop (a process
    start just before an in-process call would slow that call, whichever
    tool it is)."""
    starter = make_starter(extra_args, 10**9)
    lpd.fixture_ensure(name, starter)
    xp.ensure(name, starter=starter)
    xp.forget()
    inproc, cli, xp_times, trip = [], [], [], []
    # What the fixture sends when it must ask lpd (no environment: see
    # XProcess.ensure), as one request on the Python client.
    asked = lpd.fixture._named(name, argv=[sys.executable, HELPER, *extra_args], cwd="/tmp", timeout=120.0,
                               max_read_lines=10**9, restart=False, keep_on_timeout=True, pattern=PATTERN,
                               only_if_running=True)

    def trip_once():
        t = time.monotonic()
        assert lpd.conn.request("proc.ensure", asked, timeout=None)["outcome"] == "reused"
        trip.append(time.monotonic() - t)

    def lpd_once():
        t = time.monotonic()
        lpd.fixture_ensure(name, starter)
        inproc.append(time.monotonic() - t)

    def xp_once():
        t = time.monotonic()
        xp.ensure(name, starter=starter)
        xp_times.append(time.monotonic() - t)
        xp.forget()

    for i in range(runs):
        for once in ((lpd_once, xp_once, trip_once) if i % 2 == 0 else (trip_once, xp_once, lpd_once)):
            once()
    assert lpd.fixture.starts.get(name) == 1, "lpd's fixture started it again instead of reusing it"
    for _ in range(runs):
        t = time.monotonic()
        lpd.lpctl_ensure(name, extra_args)
        cli.append(time.monotonic() - t)
    size = os.path.getsize(lpd.log_path(name))
    return inproc, cli, xp_times, trip, size


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(REPO, "build", "default"), help="directory with lpd and lpctl")
    p.add_argument("--runs", type=int, default=30)
    args = p.parse_args()

    lpd = LpdUnderBench(os.path.abspath(args.build))
    xp = XprocessUnderBench()
    try:
        print(f"ensure benchmark: lpd ({args.build}) vs pytest-xprocess, {args.runs} runs, "
              f"helper {os.path.relpath(HELPER, REPO)}")
        print("\n(a) ready line written -> ensure returned (new start each run)")
        inproc, cli, xpt = bench_ready_latency(lpd, xp, args.runs)
        print(f"  lpd, Python client     {fmt(inproc)}")
        print(f"  lpd, lpctl process     {fmt(cli)}")
        print(f"  pytest-xprocess        {fmt(xpt)}")
        for label, name, extra in (("small log", "small", ()),
                                   ("60 MB log", "big", ("--prefill-bytes", str(60 * 1000 * 1000)))):
            inproc, cli, xpt, trip, size = bench_reuse(lpd, xp, args.runs, name, extra)
            print(f"\n(b) ensure of a running helper, {label} ({size / 1e6:.1f} MB)")
            print(f"  lpd, xprocess fixture  {fmt(inproc)}")
            print(f"  lpd, one request       {fmt(trip)}")
            print(f"  lpd, lpctl process     {fmt(cli)}")
            print(f"  pytest-xprocess        {fmt(xpt)}")
    finally:
        lpd.close()
        xp.close()


if __name__ == "__main__":
    main()
