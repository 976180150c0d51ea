#!/usr/bin/env python3
"""Per-test cost of the pytest shim under `lpctl run`, side by side in one run:

  baseline   pytest with the shim disabled (-p no:lpd_pytest)
  shim       pytest with the shim (test.start / test.finish per test, faulthandler on a socket)
  marker     the shim disabled, and a reference plugin that writes and deletes a
             marker file around every test (what pytest-abort does)

over a suite of N trivial tests (default 10,000). Each variant runs R times
(default 5), interleaved, and the median wall time is kept.

Usage: bench/shim_cost_bench.py [--build build/default] [--tests 10000] [--repeat 5]
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

MARKER_PLUGIN = '''
import os
import pytest

MARKER = os.path.join(os.getcwd(), ".current_test")

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    with open(MARKER, "w") as f:
        f.write(item.nodeid)
        f.flush()
        os.fsync(f.fileno()) if os.environ.get("MARKER_FSYNC") else None
    yield
    os.unlink(MARKER)
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "default"))
    parser.add_argument("--tests", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    lpd_bin = os.path.join(args.build, "lpd")
    lpctl_bin = os.path.join(args.build, "lpctl")

    root = tempfile.mkdtemp(prefix="lpd-shimbench-", dir="/tmp")
    sock = os.path.join(root, "lpd.sock")
    subprocess.run([lpd_bin, "start", "--socket", sock, "--state-dir", os.path.join(root, "state"),
                    "--log-level", "warn"], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(root, "test_many.py"), "w") as f:
        f.write(f"import pytest\n\n@pytest.mark.parametrize('i', range({args.tests}))\ndef test_trivial(i):\n    pass\n")
    with open(os.path.join(root, "marker_plugin.py"), "w") as f:
        f.write(MARKER_PLUGIN)

    base = [lpctl_bin, "--socket", sock, "run", "--", "/usr/bin/python3", "-m", "pytest", "-q",
            "-p", "no:cacheprovider", "test_many.py"]
    variants = {
        "baseline": base + ["-p", "no:lpd_pytest"],
        "shim": base,
        "marker": base + ["-p", "no:lpd_pytest", "-p", "marker_plugin"],
    }
    env = dict(os.environ, PYTHONPATH=root)
    times = {name: [] for name in variants}
    try:
        for _ in range(args.repeat):
            for name, cmd in variants.items():
                start = time.perf_counter()
                result = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)
                elapsed = time.perf_counter() - start
                if result.returncode != 0 or f"{args.tests} passed" not in result.stdout:
                    print(result.stdout[-2000:])
                    raise SystemExit(f"{name}: run failed ({result.returncode})")
                times[name].append(elapsed)
    finally:
        pid = int(open(os.path.join(root, "state", "lpd.lock")).read())
        os.kill(pid, 15)
        shutil.rmtree(root, ignore_errors=True)

    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"{args.tests} trivial tests under lpctl run, median of {args.repeat} runs each")
    for name in variants:
        per_test = (median[name] - median["baseline"]) / args.tests * 1e6
        extra = "" if name == "baseline" else f"  -> {per_test:+7.2f} us/test over baseline"
        print(f"  {name:<9} {median[name]:7.3f} s  (min {min(times[name]):.3f} s){extra}")
    shim_cost = (median["shim"] - median["baseline"]) / args.tests * 1e6
    verdict = "ok" if shim_cost <= 10 else "OVER TARGET"
    print(f"shim cost: {shim_cost:.2f} us/test (target <= 10 us/test: {verdict})")


if __name__ == "__main__":
    sys.exit(main())
