#!/usr/bin/env python3
"""Side-by-side benchmark of `ensure` for a helper server: lpd against
Debian's pytest-xprocess, on the same helper script, in one run.

(a) time from the helper writing its ready line (it prints a CLOCK_MONOTONIC
    timestamp in that line) to ensure returning to the caller;
(b) ensure when the helper already runs, with a small log and a 60 MB log.

lpd is measured through the Python client (in-process, what the
`lpd_process` fixture does) and through the `lpctl` command (a process
started per call, included in the time). pytest-xprocess is driven
in-process through its XProcess class, as its fixture does.

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
    return f"p50 {pct(ms, 0.5):8.2f} ms   p95 {pct(ms, 0.95):8.2f} ms   (n={len(ms)})"


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

    def fields(self, name, extra_args=(), restart=False):
        return {"name": name, "pattern": PATTERN, "argv": [sys.executable, HELPER, *extra_args], "cwd": "/tmp",
                "env": dict(os.environ), "timeout": 120, "restart": restart}

    def ensure(self, name, extra_args=(), restart=False):
        return self.conn.request("proc.ensure", self.fields(name, extra_args, restart), timeout=None)

    def lpctl_ensure(self, name, extra_args=()):
        # --scope '': the global scope, where the in-process ensure (no scope) puts it.
        subprocess.run([self.lpctl, "--socket", self.socket, "ensure", name, "--scope", "", "--pattern", PATTERN, "--",
                        sys.executable, HELPER, *extra_args], check=True, stdout=subprocess.DEVNULL)

    def kill(self, name):
        self.conn.request("proc.kill", {"name": name, "grace": 5}, timeout=60)

    def log_path(self, name):
        """The current start's log (one log per start since issue 14)."""
        return self.conn.request("proc.info", {"name": name})["log_path"]

    def close(self):
        self.conn.request("proc.kill_all", {}, timeout=60)
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

    return Starter


class XprocessUnderBench:
    def __init__(self):
        import py
        from xprocess import XProcess

        self.root = tempfile.mkdtemp(prefix="xprocess-bench-", dir="/tmp")
        self.xp = XProcess(types.SimpleNamespace(), py.path.local(self.root),
                           log=types.SimpleNamespace(debug=lambda *a: None))

    def ensure(self, name, extra_args=(), max_lines=50):
        return self.xp.ensure(name, make_starter(extra_args, max_lines))

    def kill(self, name):
        self.xp.getinfo(name).terminate()
        self.xp._force_clean_up()
        self.xp.resources.clear()

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
    lpd.ensure(name, extra_args)
    xp.ensure(name, extra_args, max_lines=10**9)
    inproc, cli, xp_times = [], [], []
    for _ in range(runs):
        t = time.monotonic()
        assert lpd.ensure(name, extra_args)["reused"]
        inproc.append(time.monotonic() - t)
        t = time.monotonic()
        lpd.lpctl_ensure(name, extra_args)
        cli.append(time.monotonic() - t)
    for _ in range(max(3, runs // 10)):
        t = time.monotonic()
        xp.ensure(name, extra_args, max_lines=10**9)
        xp_times.append(time.monotonic() - t)
        xp.xp._force_clean_up()
        xp.xp.resources.clear()
    size = os.path.getsize(lpd.log_path(name))
    return inproc, cli, xp_times, size


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
            inproc, cli, xpt, size = bench_reuse(lpd, xp, args.runs, name, extra)
            print(f"\n(b) ensure of a running helper, {label} ({size / 1e6:.1f} MB)")
            print(f"  lpd, Python client     {fmt(inproc)}")
            print(f"  lpd, lpctl process     {fmt(cli)}")
            print(f"  pytest-xprocess        {fmt(xpt)}")
    finally:
        lpd.close()
        xp.close()


if __name__ == "__main__":
    main()
