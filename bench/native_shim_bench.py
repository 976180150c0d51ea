#!/usr/bin/env python3
"""Per-test cost of lpd's native shim on a GoogleTest binary with 100,000
empty tests: the plain binary, the binary with the lpd listener but no daemon
configured, and the same with LPD_SOCKET pointing at a running lpd (every
test sends test.start and test.finish).

Build first:  cmake -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release \
                -DPython3_EXECUTABLE=/usr/bin/python3 -DLPD_BUILD_BENCH=ON
              cmake --build build/bench --target native_shim_bench_plain native_shim_bench_shim lpd
Usage: bench/native_shim_bench.py [--build build/bench] [--repeat 3]
"""

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run_once(binary, env):
    """(tests, wall ns/test inside RUN_ALL_TESTS, CPU ns/test of the whole test process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # --gtest_brief: GoogleTest prints failures only, so printing 100,000 lines is not what is measured.
    result = subprocess.run([binary, "--gtest_brief=1"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{binary} exited {result.returncode}: {result.stderr}")
    match = re.search(r"tests=(\d+) total_ms=([\d.]+) ns_per_test=(\d+)", result.stderr)
    tests = int(match.group(1))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return tests, float(match.group(3)), cpu * 1e9 / tests


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "bench"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    plain = os.path.join(args.build, "bench", "native_shim_bench_plain")
    shim = os.path.join(args.build, "bench", "native_shim_bench_shim")
    lpd_bin = os.path.join(args.build, "lpd")

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("LPD_")}
    root = tempfile.mkdtemp(prefix="lpd-bench-", dir="/tmp")
    sock = os.path.join(root, "lpd.sock")
    read_fd, write_fd = os.pipe()
    daemon = subprocess.Popen([lpd_bin, "start", "--foreground", "--socket", sock, "--state-dir",
                               os.path.join(root, "state"), "--log-level", "warn", "--ready-fd", str(write_fd)],
                              pass_fds=[write_fd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as ready:
        if not ready.read().startswith("READY"):
            sys.exit("lpd did not become ready")
    try:
        cases = [("plain GoogleTest (no adapter)", plain, base_env),
                 ("adapter, no daemon configured", shim, base_env),
                 ("adapter, lpd running (LPD_SOCKET set)", shim, dict(base_env, LPD_SOCKET=sock))]
        print(f"medians of {args.repeat} runs; wall = inside RUN_ALL_TESTS, cpu = user+sys of the test process")
        print(f"{'case':<40} {'tests':>7} {'wall ns/test':>13} {'cpu ns/test':>12}")
        for name, binary, env in cases:
            samples = [run_once(binary, env) for _ in range(args.repeat)]
            wall = statistics.median(s[1] for s in samples)
            cpu = statistics.median(s[2] for s in samples)
            print(f"{name:<40} {samples[0][0]:>7} {wall:>13.0f} {cpu:>12.0f}")
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
