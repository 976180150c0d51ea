#!/usr/bin/python3
"""System calls lpd makes per test (issue 13, piece "history"): starts a
private lpd, runs `lpctl run -- python3 -m pytest` over a suite of N trivial
tests in a temporary directory while `strace -c` counts lpd's own system
calls (every thread of lpd, not its children: the monitor and pytest are
not lpd), and prints calls per test and the top calls.

    bench/history_syscalls.py [--lpd build/x/lpd] [--lpctl build/x/lpctl] [--tests 2000]
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--lpd", default=os.environ.get("LPD_BIN", "lpd"))
ap.add_argument("--lpctl", default=os.environ.get("LPCTL_BIN", "lpctl"))
ap.add_argument("--tests", type=int, default=2000)
args = ap.parse_args()
args.lpd, args.lpctl = (os.path.abspath(shutil.which(p) or p) for p in (args.lpd, args.lpctl))

root = tempfile.mkdtemp(prefix="lpd-sysc-", dir="/tmp")
sock, state = os.path.join(root, "s.sock"), os.path.join(root, "state")
suite = os.path.join(root, "suite")
os.makedirs(suite)
with open(os.path.join(suite, "test_many.py"), "w") as f:
    f.write(f"import pytest\n@pytest.mark.parametrize('i', range({args.tests}))\ndef test_n(i):\n    pass\n")
r, w = os.pipe()
lpd = subprocess.Popen([args.lpd, "start", "--foreground", "--socket", sock, "--state-dir", state,
                        "--log-level", "warn", "--ready-fd", str(w)], pass_fds=[w],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(w)
ready = os.read(r, 100).decode()
assert ready.startswith("READY"), ready
tasks = ",".join(os.listdir(f"/proc/{lpd.pid}/task"))
out = os.path.join(root, "strace.txt")
strace = subprocess.Popen(["strace", "-c", "-o", out, "-p", tasks], stderr=subprocess.PIPE, text=True)
strace.stderr.readline()  # "strace: Process N attached": counting from here
env = dict(os.environ, LPD_SOCKET=sock)
run = subprocess.run([args.lpctl, "run", "--", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                     cwd=suite, env=env, capture_output=True, text=True)
strace.send_signal(signal.SIGINT)
strace.wait()
lpd.send_signal(signal.SIGTERM)
lpd.wait()
tail = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
print(f"lpctl run exit {run.returncode}: {tail}")
with open(out) as f:
    lines = f.read().splitlines()
total = next(l for l in lines if l.strip().endswith("total"))
calls = int(total.split()[3])
print(f"lpd system calls: {calls} for {args.tests} tests = {calls / args.tests:.2f} per test")
for line in lines[2:12]:
    print("  " + line)
shutil.rmtree(root, ignore_errors=True)
