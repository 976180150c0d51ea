#!/usr/bin/python3
"""RSS of lpd holding many idle connections, after heavy ones, and after
they all closed.

Starts a private lpd (tests/e2e/lpd_harness.Lpd), measures its resident set
(VmRSS from /proc/PID/status) and then:

1. heavy connections that come and go: --heavy connections, --batch at a
   time, each sends one --big-line-kib line (a ping with padding), reads
   the reply and closes; lpd's peak RSS (VmHWM) shows what they took, and
   RSS after they are gone whether it came back (malloc_trim);
2. opens --connections connections, each says hello and stays idle;
3. sends one big line on --heavy of them and reads the reply, so each of
   those buffered a big line once; they stay open and idle again;
4. closes every connection and waits (through `status` round trips, not
   sleeps) until lpd counts them gone;
5. with `lpctl --json events --follow` writing into a pipe (--lpctl), causes
   --follow-events events one at a time (run.register) and times each from
   the request sent to its line read from the pipe (target: within 100 ms).

It prints RSS after each step and the cost per idle connection. Target
(issue 13): 10,000 idle connections in <= 100 MB, <= 8 KB each.

Descriptors: the bench raises its own RLIMIT_NOFILE soft limit to the hard
one; lpd raises its own the same way at start. Both need --connections plus
a margin under the hard limit. lpd lets a non-root uid hold at most 1,024
connections (Server::kMaxConnectionsPerUser) and root any number, so run the
bench as root for 10,000; as another user it clamps to 1,000 and says so.

    cmake --build build/default --target lpd
    sudo /usr/bin/python3 bench/idle_connections_bench.py --build build/default
"""

import argparse
import json
import os
import resource
import select
import shutil
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))

from proc_status import status_kib  # noqa: E402  (beside this file)


def rss_kib(pid):
    return status_kib(pid, "VmRSS")


def wait_until_closed(path, expected_open=1):
    """Until lpd counts only the asking connection: each `status` round
    trip lets its loop handle more of the closes (no sleeping)."""
    while open_count(path) > expected_open:
        pass


def read_line(sock, buf):
    while b"\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("lpd closed a connection")
        buf += chunk
    line, rest = buf.split(b"\n", 1)
    return json.loads(line), rest


def open_idle(path, count, batch=256):
    """`count` connections, each with its hello answered."""
    hello = (json.dumps({"id": 1, "op": "hello", "role": "bench", "protocol": 1}) + "\n").encode()
    held = []
    while len(held) < count:
        group = []
        for _ in range(min(batch, count - len(held))):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(60)
            s.connect(path)
            s.sendall(hello)
            group.append(s)
        for s in group:
            reply, rest = read_line(s, b"")
            if not reply.get("ok"):
                raise RuntimeError(f"hello refused: {reply}")
            assert not rest
        held.extend(group)
    return held


def open_count(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(path)
    s.sendall(b'{"id":1,"op":"hello","role":"bench","protocol":1}\n{"id":2,"op":"status"}\n')
    _, buf = read_line(s, b"")
    status, _ = read_line(s, buf)
    s.close()
    return status["result"]["connections"]["open"]


def follow_latencies_ms(lpd, lpctl, count):
    """Request sent -> the event's line read from lpctl's stdout pipe."""
    follower = subprocess.Popen([lpctl, "--socket", lpd.socket, "--json", "events", "--follow", "--type",
                                 "run.started"], stdout=subprocess.PIPE, env=lpd.env())
    fd = follower.stdout.fileno()
    buf = b""

    def next_line():
        nonlocal buf
        while b"\n" not in buf:
            ready, _, _ = select.select([fd], [], [], 30)
            if not ready:
                raise RuntimeError("no line from lpctl within 30 s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError("lpctl exited")
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        return json.loads(line)

    clients = []
    latencies = []
    try:
        for i in range(count + 1):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(30)
            c.connect(lpd.socket)
            c.sendall(b'{"id":1,"op":"hello","role":"bench","protocol":1}\n')
            read_line(c, b"")
            clients.append(c)
            sent = time.monotonic()
            c.sendall((json.dumps({"id": 2, "op": "run.register", "run_id": f"follow-{i}", "argv": ["x"],
                                   "cwd": "/", "hostname": "h"}) + "\n").encode())
            while True:
                line = next_line()
                if line["data"].get("run_id") == f"follow-{i}":
                    break
            if i > 0:  # the first may come from the replay of history, as lpctl starts
                latencies.append((time.monotonic() - sent) * 1000)
    finally:
        follower.kill()
        follower.wait()
        for c in clients:
            c.close()
    return latencies


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build/default", help="build directory holding lpd (LPD_BIN overrides)")
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--heavy", type=int, default=1_000, help="connections that send one big line")
    parser.add_argument("--batch", type=int, default=200, help="heavy connections open at once in step 1")
    parser.add_argument("--big-line-kib", type=int, default=512)
    parser.add_argument("--lpctl", help="lpctl for step 5 (default: beside lpd)")
    parser.add_argument("--follow-events", type=int, default=50)
    args = parser.parse_args()

    if "LPD_BIN" not in os.environ:
        build = os.path.abspath(args.build)
        found = [p for p in (os.path.join(build, "lpd"), os.path.join(build, "daemon", "lpd")) if os.path.exists(p)]
        if not found:
            sys.exit(f"no lpd in {build}")
        os.environ["LPD_BIN"] = found[0]
    from lpd_harness import Lpd  # noqa: E402 (reads LPD_BIN at import)

    if os.geteuid() != 0 and args.connections > 1000:
        print(f"not root: lpd allows one uid 1,024 connections; measuring 1,000 instead of {args.connections}")
        args.connections = 1000
    args.heavy = min(args.heavy, args.connections)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 64
    if hard < need:
        sys.exit(f"RLIMIT_NOFILE hard limit {hard} is below {need}; raise it (ulimit -Hn) first")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    lpd = Lpd().start()  # the harness logs at debug level: one line per connect and close
    held = []
    try:
        pid = lpd.pid
        start = rss_kib(pid)
        padding = "x" * (args.big_line_kib * 1024 - 64)
        big = (json.dumps({"id": 2, "op": "ping", "padding": padding}) + "\n").encode()

        for first in range(0, args.heavy, args.batch):
            group = open_idle(lpd.socket, min(args.batch, args.heavy - first))
            for s in group:
                s.sendall(big)
            for s in group:
                reply, _ = read_line(s, b"")
                if not reply.get("ok"):
                    raise RuntimeError(f"ping refused: {reply}")
            for s in group:
                s.close()
        wait_until_closed(lpd.socket)
        churn_peak = status_kib(pid, "VmHWM")
        after_churn = rss_kib(pid)

        began = time.monotonic()
        held = open_idle(lpd.socket, args.connections)
        opened_s = time.monotonic() - began
        idle = rss_kib(pid)

        for s in held[:args.heavy]:
            s.sendall(big)
        for s in held[:args.heavy]:
            reply, _ = read_line(s, b"")
            if not reply.get("ok"):
                raise RuntimeError(f"ping refused: {reply}")
        after_heavy = rss_kib(pid)

        for s in held:
            s.close()
        held = []
        wait_until_closed(lpd.socket)
        closed = rss_kib(pid)
        lpctl = args.lpctl or os.path.join(os.path.dirname(os.environ["LPD_BIN"]), "lpctl")
        follow = follow_latencies_ms(lpd, lpctl, args.follow_events) if args.follow_events else []
        lpd.stop()
    finally:
        for s in held:
            s.close()
        if lpd.proc is not None:
            lpd.kill9()
        shutil.rmtree(lpd.root, ignore_errors=True)

    n = args.connections
    per_conn = (idle - start) * 1024 / n
    print(f"lpd {os.environ['LPD_BIN']}")
    print(f"RSS at start:                              {start / 1024:8.1f} MiB")
    print(f"{args.heavy:,} heavy connections ({args.big_line_kib} KiB line each, {args.batch} at a time) came and went:")
    print(f"  peak RSS while they were there (VmHWM):   {churn_peak / 1024:8.1f} MiB")
    print(f"  RSS once they were gone:                  {after_churn / 1024:8.1f} MiB")
    print(f"RSS with {n:,} idle connections:          {idle / 1024:8.1f} MiB  "
          f"({per_conn:,.0f} B per connection; opened in {opened_s:.1f} s)")
    print(f"  ... after one {args.big_line_kib} KiB line on {args.heavy:,} of them: {after_heavy / 1024:8.1f} MiB")
    print(f"RSS after all closed:                      {closed / 1024:8.1f} MiB")
    if follow:
        follow.sort()
        print(f"lpctl --json events --follow into a pipe, request sent -> line read ({len(follow)} events): "
              f"p50 {statistics.median(follow):.2f} ms, max {follow[-1]:.2f} ms (target: within 100 ms)")
    ok = idle / 1024 <= 100 * n / 10_000 and per_conn <= 8192
    print(f"target <= 8 KB per idle connection (100 MB per 10,000): {'ok' if ok else 'OVER TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
