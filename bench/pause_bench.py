#!/usr/bin/env python3
"""Live-pause latency through a real lpd, real lpctl and a real pytest.

(a) `lpctl resume` started -> the paused test body continuing
(b) checkpoint() called -> `lpctl watch` printing the pause

Both ends read CLOCK_MONOTONIC (time.monotonic_ns is system-wide on Linux),
so timestamps taken in different processes compare directly.

Usage: bench/pause_bench.py [--build build/default] [--count 200]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The markers go to stderr: stdout is pytest's terminal, where lpd_pytest
# announces each pause and resume from a thread of its own, and a print to
# it is not one write, so an announcement can land inside a marker line.
TEST_SOURCE = """
import sys, time
from lpd_pytest import checkpoint

def test_loop():
    count = int(sys.argv_count)
    print("READY", file=sys.stderr, flush=True)                        # the run is registered by now
    for i in range(count):
        sys.__stdin__.readline()                      # the bench says go
        print("CALL", time.monotonic_ns(), file=sys.stderr, flush=True)
        checkpoint(task=f"step {i}", timeout=60)
        print("CONT", time.monotonic_ns(), file=sys.stderr, flush=True)
"""


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "default"))
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    lpd_bin = os.path.join(args.build, "lpd")
    lpctl_bin = os.path.join(args.build, "lpctl")

    root = tempfile.mkdtemp(prefix="lpd-bench-", dir="/tmp")
    sock = os.path.join(root, "lpd.sock")
    subprocess.run([lpd_bin, "start", "--socket", sock, "--state-dir", os.path.join(root, "state"),
                    "--log-level", "warn"], check=True, stdout=subprocess.DEVNULL)
    env = dict(os.environ, LPD_SOCKET=sock, PYTHONPATH=os.path.join(ROOT, "shim", "python"),
               PYTEST_PLUGINS="lpd_pytest", LPD_RUN_ID="bench-run")
    with open(os.path.join(root, "conftest.py"), "w") as f:
        f.write(f"import sys\nsys.argv_count = {args.count}\n")
    with open(os.path.join(root, "test_bench.py"), "w") as f:
        f.write(TEST_SOURCE)
    test = subprocess.Popen(["/usr/bin/python3", "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "test_bench.py"],
                            cwd=root, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    resume_ms, watch_ms = [], []
    try:
        line = test.stderr.readline()
        while line and not line.startswith("READY"):
            line = test.stderr.readline()
        for _ in range(args.count):
            watch = subprocess.Popen([lpctl_bin, "--socket", sock, "watch", "--run-id", "bench-run"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
            watch.stderr.readline()              # "watching run ...": its request is on the socket
            test.stdin.write("go\n")
            test.stdin.flush()
            first = watch.stdout.readline()      # "pause <id> (checkpoint) in run ..."
            printed = time.monotonic_ns()
            pause_id = first.split()[1]
            watch.communicate()
            line = test.stderr.readline()
            while not line.startswith("CALL"):
                line = test.stderr.readline()
            called = int(line.split()[1])
            watch_ms.append((printed - called) / 1e6)

            started = time.monotonic_ns()
            subprocess.run([lpctl_bin, "--socket", sock, "resume", pause_id, "--result", "true"], check=True,
                           stdout=subprocess.DEVNULL)
            line = test.stderr.readline()
            while not line.startswith("CONT"):
                line = test.stderr.readline()
            resume_ms.append((int(line.split()[1]) - started) / 1e6)
        test.stdin.close()
        test.wait(timeout=60)
    finally:
        if test.poll() is None:
            test.kill()
        pid = int(open(os.path.join(root, "state", "lpd.lock")).read())
        os.kill(pid, 15)
        shutil.rmtree(root, ignore_errors=True)

    def row(name, values, target):
        p50, p95 = statistics.median(values), percentile(values, 0.95)
        verdict = "ok" if p50 <= target else "OVER TARGET"
        print(f"{name:<44} p50 {p50:7.3f} ms  p95 {p95:7.3f} ms  (n={len(values)}, target p50 <= {target} ms: {verdict})")

    print(f"pause latency through lpd ({args.count} pauses, one pytest process)")
    row("(a) lpctl resume started -> test continues", resume_ms, 5)
    row("(b) checkpoint() called -> lpctl watch prints", watch_ms, 2)


if __name__ == "__main__":
    sys.exit(main())
