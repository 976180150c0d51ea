#!/usr/bin/python3
"""lpctl's whole-process cost against /bin/true, interleaved in one run (issue 18).

Every round spawns, in a shuffled order, `/bin/true` and each lpctl command
(by default `lpctl ping` and `lpctl status`, each a whole connect + hello +
request + exit against a running lpd), and, with --baseline, the same commands
on a second lpctl binary. Each arm is timed from the parent: posix_spawn to
waitpid returning (time.perf_counter_ns), and the child's own user+sys CPU time
comes from wait4's rusage. Since the arms alternate within every round, the
machine's drift (neighbours on a shared VM, CPU frequency) hits all of them
alike; the ratio of medians to /bin/true's is the figure that counts
(target: lpctl's median <= 1.5 ms and <= 1.8 x /bin/true's).

The bench starts its own lpd (temporary socket and state directory, stopped at
the end) unless --socket names a running one.

Usage: bench/lpctl_cost_bench.py [--build build/default] [--lpctl BIN] [--baseline BIN]
                                 [--socket PATH] [-n 500] [--commands ping,status]
"""

import argparse
import os
import random
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import json

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET_MS = 1.5
TARGET_RATIO = 1.8
TRUE_BIN = "/bin/true"


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def find_binary(build, name):
    for candidate in (os.path.join(build, name), os.path.join(build, "client", name),
                      os.path.join(build, "daemon", name)):
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate):
            return candidate
    sys.exit(f"lpctl_cost_bench: no {name} in {build} (build it, or pass --{name} BIN)")


class Daemon:
    """An lpd of the bench's own, on a socket in a fresh temporary directory."""

    def __init__(self, lpd, lpctl):
        self.root = tempfile.mkdtemp(prefix="lpd-cost-bench-", dir="/tmp")
        self.socket = os.path.join(self.root, "lpd.sock")
        subprocess.run([lpd, "start", "--socket", self.socket, "--state-dir", os.path.join(self.root, "state"),
                        "--log-level", "warn"], check=True, stdout=subprocess.DEVNULL)
        status = subprocess.run([lpctl, "--socket", self.socket, "--json", "status"], check=True,
                                capture_output=True, text=True)
        self.pid = json.loads(status.stdout.splitlines()[0])["pid"]

    def close(self):
        fd = os.pidfd_open(self.pid)
        os.kill(self.pid, signal.SIGTERM)
        select.select([fd], [], [], 30)  # readable once lpd has exited
        os.close(fd)
        shutil.rmtree(self.root, ignore_errors=True)


class Spawner:
    """Runs one argv to completion: wall ns from posix_spawn to waitpid, and the
    child's user+sys CPU ns. The child's stdout goes to /dev/null (opened once
    here, so no arm pays for an open), stderr stays the bench's."""

    def __init__(self):
        self.devnull = os.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC)
        self.actions = [(os.POSIX_SPAWN_DUP2, self.devnull, 1)]
        self.env = dict(os.environ)

    def run(self, argv):
        start = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, self.env, file_actions=self.actions)
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter_ns() - start
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"lpctl_cost_bench: {' '.join(argv)} exited with {os.waitstatus_to_exitcode(status)}")
        return wall, int((usage.ru_utime + usage.ru_stime) * 1e9)


def describe_binary(path):
    """Size on disk and the shared libraries the dynamic loader has to map."""
    size = os.path.getsize(path)
    try:
        dynamic = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
        needed = [line.split("[", 1)[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line]
        linking = ("NEEDED " + ", ".join(needed)) if needed else "static (no NEEDED)"
    except FileNotFoundError:
        linking = "readelf not found"
    return f"{size / 1e6:.1f} MB, {linking}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "default"),
                        help="build directory holding lpd and lpctl (default build/default)")
    parser.add_argument("--lpctl", help="lpctl binary to measure (default: BUILD/lpctl)")
    parser.add_argument("--lpd", help="lpd binary to start (default: BUILD/lpd)")
    parser.add_argument("--baseline", help="a second lpctl binary ('before'), measured in the same rounds")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=BIN",
                        help="another lpctl build measured in the same rounds (repeatable), e.g. static=/tmp/lpctl")
    parser.add_argument("--socket", help="use this running lpd instead of starting one")
    parser.add_argument("-n", "--rounds", type=int, default=500, help="interleaved rounds (default 500)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first (default 20)")
    parser.add_argument("--commands", default="ping,status",
                        help="comma-separated lpctl commands, each run as `lpctl --socket S CMD` (default ping,status)")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()

    lpctl = os.path.abspath(args.lpctl or find_binary(args.build, "lpctl"))
    binaries = {"lpctl": lpctl}
    if args.baseline:
        binaries = {"before": os.path.abspath(args.baseline), "lpctl": lpctl}
    for variant in args.variant:
        label, _, binary = variant.partition("=")
        if not binary or label in binaries or " " in label:
            sys.exit(f"lpctl_cost_bench: --variant wants a new LABEL=BIN, got {variant!r}")
        binaries[label] = os.path.abspath(binary)
    daemon = None
    socket_path = args.socket
    if not socket_path:
        daemon = Daemon(os.path.abspath(args.lpd or find_binary(args.build, "lpd")), lpctl)
        socket_path = daemon.socket

    arms = {"/bin/true": [TRUE_BIN]}
    for label, binary in binaries.items():
        for command in args.commands.split(","):
            arms[f"{label} {command}"] = [binary, "--socket", socket_path, *command.split()]
    wall = {arm: [] for arm in arms}
    cpu = {arm: [] for arm in arms}
    spawner = Spawner()
    rng = random.Random(args.seed)
    order = list(arms)
    try:
        for round_index in range(args.warmup + args.rounds):
            rng.shuffle(order)
            for arm in order:
                w, c = spawner.run(arms[arm])
                if round_index >= args.warmup:
                    wall[arm].append(w)
                    cpu[arm].append(c)
    finally:
        if daemon:
            daemon.close()

    print(f"lpctl whole-process cost, {args.rounds} interleaved rounds (+{args.warmup} warm-up), "
          f"spawn to waitpid, stdout to /dev/null")
    for label, binary in binaries.items():
        print(f"  {label}: {binary} ({describe_binary(binary)})")
    print(f"  load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    true_median = statistics.median(wall["/bin/true"])
    print(f"{'arm':<24} {'median ms':>10} {'p90 ms':>8} {'mean ms':>8} {'cpu med ms':>11} {'ratio':>6}")
    for arm in arms:
        median = statistics.median(wall[arm])
        print(f"{arm:<24} {median / 1e6:>10.3f} {percentile(wall[arm], 0.9) / 1e6:>8.3f} "
              f"{statistics.fmean(wall[arm]) / 1e6:>8.3f} {statistics.median(cpu[arm]) / 1e6:>11.3f} "
              f"{median / true_median:>6.2f}")
    print()
    verdicts = []
    for arm in arms:
        if not arm.startswith("lpctl "):
            continue
        median = statistics.median(wall[arm])
        ok = median / 1e6 <= TARGET_MS and median / true_median <= TARGET_RATIO
        verdicts.append(ok)
        print(f"{arm}: median {median / 1e6:.3f} ms, {median / true_median:.2f} x /bin/true "
              f"(target <= {TARGET_MS} ms and <= {TARGET_RATIO} x): {'met' if ok else 'MISSED'}")
        if args.baseline:
            before = statistics.median(wall["before" + arm[len("lpctl"):]])
            print(f"  before: {before / 1e6:.3f} ms, saved {(before - median) / 1e6:.3f} ms per call")
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
