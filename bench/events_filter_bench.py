#!/usr/bin/env python3
"""How long one `events.list` call with a narrow filter holds lpd's event
loop, over a long global events journal (issue 13; found by its attack: a
filtered call parsed up to 4 MiB of journal per call, and a few connections
pipelining them stalled lpd for every other client).

Writes a journal of N `test.finish` events (default 160,000, about 38 MB) in
lpd's own line format into a fresh state directory, starts lpd on it with
retention off, and times `events.list` for a run id that matches nothing
(the worst case: the whole scan budget read, nothing returned), median and
best of R calls (default 10), as one connection sees them.

Usage: bench/events_filter_bench.py --build build/default [--events 160000] [--calls 10]
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def write_journal(events_dir, count):
    os.makedirs(events_dir)
    with open(os.path.join(events_dir, "00000000000000000001.jsonl"), "w") as f:
        for seq in range(1, count + 1):
            run = f"20261130-0000{seq // 16 % 100:02d}-{seq // 16:06x}"
            data = {"nodeid": f"t.py::test_{seq}", "outcome": "passed", "phase": "call", "duration": 0.001,
                    "message": "", "attempt": 1, "worker_id": "gw0"}
            f.write('{"seq":%d,"time":%.6f,"event":"test.finish","run_id":"%s","owner":0,"data":%s}\n'
                    % (seq, 1796000000 + seq / 1000, run, json.dumps(data, separators=(",", ":"))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build/default")
    parser.add_argument("--events", type=int, default=160_000)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    lpd_bin = os.path.join(args.build, "lpd")
    root = tempfile.mkdtemp(prefix="lpd-filter-bench-")
    sock = os.path.join(root, "lpd.sock")
    state = os.path.join(root, "state")
    try:
        write_journal(os.path.join(state, "events"), args.events)
        size = os.path.getsize(os.path.join(state, "events", "00000000000000000001.jsonl"))
        subprocess.run([lpd_bin, "start", "--socket", sock, "--state-dir", state, "--keep-runs", "0",
                        "--keep-days", "0", "--log-level", "warn"], check=True, stdout=subprocess.DEVNULL)
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        f = s.makefile("rwb")

        def request(op, **fields):
            f.write((json.dumps(dict(fields, id=1, op=op)) + "\n").encode())
            f.flush()
            return json.loads(f.readline())

        request("hello", protocol=1, role="bench")
        times = []
        for _ in range(args.calls):
            start = time.monotonic()
            reply = request("events.list", since=0, run_id="no-such-run")
            times.append(time.monotonic() - start)
            assert reply["ok"] and reply["result"]["events"] == [], reply
        print(f"lpd {lpd_bin}; journal of {args.events} events, {size / 1e6:.1f} MB")
        print(f"events.list for a run id that matches nothing, one call: median "
              f"{1000 * statistics.median(times):.1f} ms, best {1000 * min(times):.1f} ms "
              f"({args.calls} calls; next cursor {reply['result']['next']})")
        s.close()
        subprocess.run([lpd_bin, "stop", "--socket", sock], stdout=subprocess.DEVNULL)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
