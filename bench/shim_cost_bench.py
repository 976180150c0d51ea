#!/usr/bin/env python3
"""Per-test cost of the pytest shim under `lpctl run`, against no shim and
against a reference plugin that writes and deletes a marker file around every
test (what pytest-abort does), over a suite of N trivial tests (default 10,000).

Two measurements:

1. Interleaved (the figure that counts). One pytest run under `lpctl run`,
   connected to lpd. A bench plugin switches, every BLOCK tests (default 100),
   between three arms: the shim's per-test plugin registered (test.start and
   test.finish into the event ring, a wake-up per window), nothing, or the
   marker-file plugin; and times each test's whole protocol (setup, call,
   teardown, every plugin's hooks) from outside. Since the arms alternate every
   few tens of milliseconds, the machine's drift (CPU frequency, neighbours on
   a VM) hits all three alike, and the differences of the means are the costs.
   The run is repeated R times (default 3); the median is reported.

2. Whole runs. Three separate `lpctl run -- pytest` runs of the suite (shim
   loaded, shim disabled with -p no:lpd_pytest, marker plugin), W times each
   (default 3), interleaved; the median wall times. This includes start-up
   and collection, and on a shared 2-core VM identical runs differ by up to
   ±15 %, so small per-test differences drown here: it is the sanity check.

Usage: bench/shim_cost_bench.py [--build build/default] [--tests 10000] [--repeat 3]
                                [--block 100] [--whole-runs 3]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET_US = 10.0

MARKER_PLUGIN = '''
import os
import pytest

MARKER = os.path.join(os.getcwd(), ".current_test")


class MarkerFile:
    """What pytest-abort does: the running test's nodeid in a file, deleted
    when the test is over, so a wrapper can tell which test crashed."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        with open(MARKER, "w") as f:
            f.write(item.nodeid)
        yield
        os.unlink(MARKER)


def pytest_configure(config):
    if os.environ.get("SHIM_BENCH_MARKER"):
        config.pluginmanager.register(MarkerFile(), "marker_file")
'''

INTERLEAVE_PLUGIN = '''
import gc
import json
import os
import time

import pytest

ARMS = ("baseline", "shim", "marker")
BLOCK = int(os.environ["SHIM_BENCH_BLOCK"])


class Interleave:
    def __init__(self, config):
        self.pm = config.pluginmanager
        self.shim = None
        marker_module = __import__("marker_plugin")
        self.marker = marker_module.MarkerFile()
        self.index = 0
        self.arm = None
        self.wall = {arm: [] for arm in ARMS}
        self.cpu = {arm: 0.0 for arm in ARMS}

    def _switch(self, arm):
        # Registering a plugin makes garbage (pytest parses it for fixtures);
        # collected here, outside any timed test, so that the collection it
        # would set off is not charged to the first tests of the next arm.
        for name, plugin, wanted in (("lpd_pytest_reporter", self.shim, arm == "shim"),
                                     ("marker_file", self.marker, arm == "marker")):
            registered = self.pm.is_registered(plugin)
            if wanted and not registered:
                self.pm.register(plugin, name)
            elif registered and not wanted:
                self.pm.unregister(plugin)
        gc.collect()
        self.arm = arm

    def pytest_sessionstart(self, session):
        # lpd_pytest registers its per-test plugin in its own pytest_configure.
        self.shim = self.pm.get_plugin("lpd_pytest_reporter")
        if self.shim is None:
            raise pytest.UsageError("shim bench: the shim is not connected to lpd (no lpd_pytest_reporter plugin)")

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        arm = ARMS[(self.index // BLOCK) % len(ARMS)]
        self.index += 1
        if arm != self.arm:
            self._switch(arm)
        c0 = time.process_time()
        t0 = time.perf_counter()
        yield
        t1 = time.perf_counter()
        self.cpu[arm] += time.process_time() - c0
        self.wall[arm].append(t1 - t0)

    def pytest_sessionfinish(self, session):
        self._switch("shim")  # leave the shim as it was
        with open(os.environ["SHIM_BENCH_OUT"], "w") as f:
            json.dump({"wall": self.wall, "cpu": self.cpu}, f)


def pytest_configure(config):
    config.pluginmanager.register(Interleave(config), "shim_bench_interleave")
'''


def lpd_daemon(build, root):
    sock = os.path.join(root, "lpd.sock")
    subprocess.run([os.path.join(build, "lpd"), "start", "--socket", sock, "--state-dir", os.path.join(root, "state"),
                    "--log-level", "warn"], check=True, stdout=subprocess.DEVNULL)
    return sock


def run_suite(cmd, root, env, tests, label):
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0 or f"{tests} passed" not in result.stdout:
        print(result.stdout[-3000:])
        raise SystemExit(f"{label}: run failed ({result.returncode})")
    return elapsed


def interleaved(args, base, root, env):
    """Per-arm mean and median per-test time, from one run, for each repeat."""
    rounds = []
    for i in range(args.repeat):
        out = os.path.join(root, f"interleave-{i}.json")
        run_suite(base + ["-p", "marker_plugin", "-p", "interleave_plugin"], root,
                  dict(env, SHIM_BENCH_OUT=out, SHIM_BENCH_BLOCK=str(args.block)), args.tests, "interleaved")
        with open(out) as f:
            data = json.load(f)
        stats = {}
        for arm, walls in data["wall"].items():
            stats[arm] = {"n": len(walls), "mean": statistics.fmean(walls) * 1e6,
                          "median": statistics.median(walls) * 1e6, "cpu": data["cpu"][arm] / len(walls) * 1e6}
        rounds.append(stats)
    return rounds


def whole_runs(args, base, root, env):
    variants = {
        "baseline": base + ["-p", "no:lpd_pytest"],
        "shim": base,
        "marker": base + ["-p", "no:lpd_pytest", "-p", "marker_plugin"],
    }
    times = {name: [] for name in variants}
    for _ in range(args.whole_runs):
        for name, cmd in variants.items():
            run_env = dict(env, SHIM_BENCH_MARKER="1") if name == "marker" else env
            times[name].append(run_suite(cmd, root, run_env, args.tests, name))
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "default"))
    parser.add_argument("--tests", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs (default 3)")
    parser.add_argument("--block", type=int, default=100, help="tests per arm before switching (default 100)")
    parser.add_argument("--whole-runs", type=int, default=3, help="separate runs per variant (default 3; 0: skip)")
    args = parser.parse_args()
    if args.repeat < 1 or args.block < 1 or args.tests < 3 * args.block:
        parser.error("need --repeat >= 1, --block >= 1 and --tests >= 3 * --block")

    root = tempfile.mkdtemp(prefix="lpd-shimbench-", dir="/tmp")
    sock = lpd_daemon(args.build, root)
    with open(os.path.join(root, "test_many.py"), "w") as f:
        f.write(f"import pytest\n\n@pytest.mark.parametrize('i', range({args.tests}))\ndef test_trivial(i):\n    pass\n")
    with open(os.path.join(root, "marker_plugin.py"), "w") as f:
        f.write(MARKER_PLUGIN)
    with open(os.path.join(root, "interleave_plugin.py"), "w") as f:
        f.write(INTERLEAVE_PLUGIN)
    base = [os.path.join(args.build, "lpctl"), "--socket", sock, "run", "--", "/usr/bin/python3", "-m", "pytest",
            "-q", "-p", "no:cacheprovider", "test_many.py"]
    env = dict(os.environ, PYTHONPATH=root)
    try:
        rounds = interleaved(args, base, root, env)
        times = whole_runs(args, base, root, env) if args.whole_runs > 0 else None
    finally:
        with open(os.path.join(root, "state", "lpd.lock")) as f:
            os.kill(int(f.read()), 15)
        shutil.rmtree(root, ignore_errors=True)

    print(f"{args.tests} trivial tests under lpctl run")
    print(f"\n1. interleaved in one run, arms switched every {args.block} tests, {args.repeat} run(s); "
          f"per test, over baseline:")
    print(f"   {'run':<5}{'baseline':>12}{'shim mean':>12}{'median':>9}{'cpu':>9}"
          f"{'marker mean':>14}{'median':>9}{'cpu':>9}")
    shim_costs, marker_costs = [], []
    for i, r in enumerate(rounds, 1):
        b = r["baseline"]
        d = {arm: {k: r[arm][k] - b[k] for k in ("mean", "median", "cpu")} for arm in ("shim", "marker")}
        shim_costs.append(d["shim"]["mean"])
        marker_costs.append(d["marker"]["mean"])
        print(f"   {i:<5}{b['mean']:>10.1f}us{d['shim']['mean']:>+10.2f}us{d['shim']['median']:>+8.2f}"
              f"{d['shim']['cpu']:>+9.2f}{d['marker']['mean']:>+12.2f}us{d['marker']['median']:>+8.2f}"
              f"{d['marker']['cpu']:>+9.2f}")
    shim_cost = statistics.median(shim_costs)
    print(f"   median: shim {shim_cost:+.2f} us/test, marker file {statistics.median(marker_costs):+.2f} us/test")

    if times is not None:
        median = {name: statistics.median(t) for name, t in times.items()}
        print(f"\n2. whole runs, median of {args.whole_runs} each (start-up and collection included; noisy):")
        for name, t in times.items():
            extra = "" if name == "baseline" else \
                f"  {(median[name] - median['baseline']) / args.tests * 1e6:+8.2f} us/test over baseline"
            print(f"   {name:<9}{median[name]:7.3f} s  (min {min(t):.3f} s, max {max(t):.3f} s){extra}")

    verdict = "met" if shim_cost <= TARGET_US else "NOT MET"
    print(f"\nshim cost: {shim_cost:.2f} us/test (interleaved mean; target <= {TARGET_US:g} us/test: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
