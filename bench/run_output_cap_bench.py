#!/usr/bin/python3
"""h13out (issue 13): `lpctl run -- yes` under lpd's run output cap.

Starts a fresh lpd (its defaults unless --run-output-max is given), runs
`yes` under `lpctl run` for --seconds, then stops the run (Ctrl-C, as a
person would) and prints: how much `yes` wrote (the log's size: offsets
keep counting what was freed), the state directory's disk use at the end
(st_blocks of every file, as `du`) and its peak (sampled every 20 ms), and
lpd's CPU time meanwhile (/proc/<pid>/stat utime+stime).

Two cases: "followed" (lpctl run streams the output to /dev/null: lpd relays
everything it can read, the worst case for lpd's CPU) and "detached"
(`lpctl run --detach`, nobody follows: the cap alone).

  /usr/bin/python3 bench/run_output_cap_bench.py --build build/h13out --seconds 10
"""

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time


def disk_use(root):
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_case(args, follow):
    root = tempfile.mkdtemp(prefix="lpd-outcap-", dir="/tmp")
    sock, state = os.path.join(root, "lpd.sock"), os.path.join(root, "state")
    build = os.path.abspath(args.build)
    lpd_bin, lpctl_bin = os.path.join(build, "lpd"), os.path.join(build, "lpctl")
    extra = ["--run-output-max", str(args.run_output_max)] if args.run_output_max is not None else []
    lpd = subprocess.Popen([lpd_bin, "start", "--foreground", "--socket", sock, "--state-dir", state, *extra],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(sock):
            time.sleep(0.01)
        subprocess.run([lpctl_bin, "--socket", sock, "ping"], check=True, capture_output=True)
        env = dict(os.environ, LPD_SOCKET=sock)
        cpu_before = cpu_seconds(lpd.pid)
        if follow:
            client = subprocess.Popen([lpctl_bin, "--socket", sock, "run", "--", "yes"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, env=env, cwd=root)
        else:
            started = subprocess.run([lpctl_bin, "--socket", sock, "--json", "run", "--detach", "--", "yes"],
                                     capture_output=True, text=True, env=env, cwd=root, check=True)
            import json
            run_id = json.loads(started.stdout)["run_id"]
        peak = [0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], disk_use(state))
                stop.wait(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        time.sleep(args.seconds)
        if follow:
            client.send_signal(signal.SIGINT)
            client.wait(timeout=120)
        else:
            subprocess.run([lpctl_bin, "--socket", sock, "stop", run_id], capture_output=True, env=env)
            subprocess.run([lpctl_bin, "--socket", sock, "--json", "events", "--follow", "--run-id", run_id],
                           capture_output=True, env=env, timeout=120)
        stop.set()
        sampler.join()
        cpu = cpu_seconds(lpd.pid) - cpu_before
        runs = os.path.join(state, "runs")
        (run_dir,) = os.listdir(runs)
        written = os.stat(os.path.join(runs, run_dir, "output.log")).st_size
        end_use = disk_use(state)
        du = subprocess.run(["du", "-sh", state], capture_output=True, text=True).stdout.split()[0]
        return written, end_use, peak[0], cpu, du
    finally:
        lpd.send_signal(signal.SIGTERM)
        lpd.wait(timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--run-output-max", type=int, default=None, help="default: lpd's own default")
    args = parser.parse_args()
    print(f"lpctl run -- yes for {args.seconds:g} s, --run-output-max "
          f"{'default' if args.run_output_max is None else args.run_output_max}")
    print("| case | yes wrote | state dir at end | peak | du -sh | lpd CPU |")
    print("|---|---:|---:|---:|---:|---:|")
    mib = 1024 * 1024
    for follow in (True, False):
        written, end_use, peak, cpu, du = one_case(args, follow)
        print(f"| {'followed (lpctl run > /dev/null)' if follow else 'detached'} | {written / mib:,.0f} MiB "
              f"| {end_use / mib:,.1f} MiB | {peak / mib:,.1f} MiB | {du} | {cpu:.2f} s "
              f"({100 * cpu / args.seconds:.0f}% of one core) |")


if __name__ == "__main__":
    main()
