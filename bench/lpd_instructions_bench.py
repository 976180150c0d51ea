#!/usr/bin/env python3
"""lpd's instructions per test, counted by valgrind (issue 13): a figure that
does not move with the machine's speed. The CPU time per test that
scale_bench.py's figure e reads from /proc moves by a third on a shared VM
from one hour to the next; this one moves by about 1 % between runs (the
shims' batching differs a little), so it tells whether a change made lpd do
less.

lpd runs under `valgrind --tool=cachegrind --cache-sim=no` on a fresh state
directory; `pytest -n WORKERS` (the lpd shim loaded from this build, lpd
found by LPD_SOCKET) runs N/2 and then N trivial tests, each against its own
lpd; lpd is stopped and valgrind's total read. Per test: the difference of
the two totals over N/2 tests, so lpd's start, its stop and the run's
fixed costs drop out. The runs are not supervised (`lpctl run` cannot run
under valgrind: lpd-monitor's spawn needs a pidfd valgrind does not give);
what is left out is a supervised run's JUnit and result keeping at its end,
which scale_bench.py's figure c covers.

Usage: bench/lpd_instructions_bench.py [--build build/default] [--tests 2000] [--workers 2]
Needs valgrind (Debian's package).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from ready_pipe import read_readiness  # noqa: E402 - beside this file
PYTHON = "/usr/bin/python3"


def lpd_instructions(build, work, tests, workers, timeout=600):
    """Total instructions lpd ran (valgrind's "I refs") from its start to
    its stop around one `pytest -n workers` of `tests` trivial tests."""
    root = tempfile.mkdtemp(prefix=f"lpd-ir-{tests}-", dir=work)
    socket_path = os.path.join(root, "lpd.sock")
    log_path = os.path.join(root, "valgrind.log")
    read_fd, write_fd = os.pipe()
    lpd = subprocess.Popen(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         f"--log-file={log_path}", os.path.join(build, "lpd"), "start", "--foreground", "--socket", socket_path,
         "--state-dir", os.path.join(root, "state"), "--log-level", "warn", "--ready-fd", str(write_fd)],
        pass_fds=[write_fd], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    report = read_readiness(read_fd, time.monotonic() + timeout)
    if report is None:
        lpd.kill()
        raise SystemExit("lpd under valgrind did not get ready in time")
    if not report.startswith(b"READY"):
        raise SystemExit(f"lpd did not start: {report!r}")
    test_file = os.path.join(root, "test_trivial.py")
    with open(test_file, "w") as f:
        f.write(f"import pytest\n\n\n@pytest.mark.parametrize('i', range({tests}))\ndef test_trivial(i):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LPD_") and k not in ("PYTEST_ADDOPTS",)}
    shim = os.path.join(ROOT, "shim", "python")
    env.update(LPD_SOCKET=socket_path, PYTEST_PLUGINS="lpd_pytest",
               PYTHONPATH=os.pathsep.join([shim, os.path.join(build, "python")]))
    result = subprocess.run([PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers),
                             test_file], cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0 or f"{tests} passed" not in result.stdout:
        print(result.stdout[-3000:], result.stderr[-3000:])
        raise SystemExit(f"pytest of {tests} tests did not pass (exit {result.returncode})")
    runs = os.listdir(os.path.join(root, "state", "runs"))
    if len(runs) != 1:
        raise SystemExit(f"expected the shim to register one run with lpd, found {runs}")
    subprocess.run([os.path.join(build, "lpd"), "stop", "--socket", socket_path], capture_output=True,
                   timeout=timeout)
    lpd.wait(timeout=timeout)
    with open(log_path) as f:
        match = re.search(r"I\s+refs:\s+([\d,]+)", f.read())
    if not match:
        raise SystemExit(f"no instruction count in {log_path}")
    shutil.rmtree(root, ignore_errors=True)
    return int(match.group(1).replace(",", ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "default"))
    parser.add_argument("--tests", type=int, default=2000, help="tests of the larger run (default 2000)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind: apt-get install valgrind")
    build = os.path.abspath(args.build)
    work = tempfile.mkdtemp(prefix="lpd-ir-bench-")
    try:
        half = args.tests // 2
        small = lpd_instructions(build, work, half, args.workers)
        large = lpd_instructions(build, work, args.tests, args.workers)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"lpd {build}/lpd under valgrind, pytest -n {args.workers}, not supervised")
    print(f"  {half} tests: {small:,} instructions; {args.tests} tests: {large:,} instructions")
    print(f"  lpd's instructions per test (the difference over {args.tests - half} tests): "
          f"{(large - small) / (args.tests - half):,.0f}")


if __name__ == "__main__":
    sys.exit(main())
