#!/usr/bin/env python3
"""Event -> WebSocket client latency through a real lpd (issue 16, h16api).

A shim-like client on lpd's Unix socket registers a run and sends
test.start / test.finish notifications (what a pytest run sends, two events
per test), paced at --rate tests a second; a WebSocket client on
`GET /ws` (Debian's python3-websockets, asyncio) receives each as a
{"type": "test", "payload": {...}} frame. Latency is from just before the
notification is written to the socket until its frame was parsed on the
WebSocket client: lpd's dispatch, event bus, the events.subscribe stream,
the frame conversion and the WebSocket write and read, plus Python's own
cost on both ends. Both ends read CLOCK_MONOTONIC in one process.

Usage: bench/http_bench.py [--build build/default] [--tests 2500] [--rate 1000]
"""

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def request(sock, reader, message):
    sock.sendall((json.dumps(message) + "\n").encode())
    while True:
        line = reader.readline()
        if not line:
            raise SystemExit("lpd closed the connection")
        reply = json.loads(line)
        if "ok" in reply:
            if not reply["ok"]:
                raise SystemExit(f"lpd refused {message['op']}: {reply}")
            return reply["result"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "default"))
    parser.add_argument("--tests", type=int, default=2500, help="tests to report (two events each)")
    parser.add_argument("--rate", type=float, default=1000.0, help="tests a second (0: as fast as possible)")
    args = parser.parse_args()
    import websockets  # Debian's python3-websockets

    root = tempfile.mkdtemp(prefix="lpd-http-bench-", dir="/tmp")
    sock_path = os.path.join(root, "lpd.sock")
    state = os.path.join(root, "state")
    subprocess.run([os.path.join(args.build, "lpd"), "start", "--socket", sock_path, "--state-dir", state,
                    "--log-level", "warn", "--http", "127.0.0.1:0"], check=True, stdout=subprocess.DEVNULL)
    try:
        shim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        shim.connect(sock_path)
        reader = shim.makefile("r")
        request(shim, reader, {"id": 1, "op": "hello", "protocol": 1, "role": "shim"})
        address = request(shim, reader, {"id": 2, "op": "status"})["http"]["address"]
        run_id = request(shim, reader, {"id": 3, "op": "run.register", "argv": ["bench"], "cwd": root})["run_id"]
        with open(os.path.join(state, "http.token")) as f:
            token = f.read().strip()

        sent = {}  # (event, nodeid) -> monotonic ns just before the write
        latencies = []
        total = args.tests * 2

        def send_all():
            interval = 1.0 / args.rate if args.rate > 0 else 0.0
            start = time.monotonic()
            for i in range(args.tests):
                nodeid = f"bench.py::test_{i}"
                if interval:
                    delay = start + i * interval - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)  # pacing the load, not waiting for a result
                sent[("test.start", nodeid)] = time.monotonic_ns()
                shim.sendall((json.dumps({"op": "test.start", "nodeid": nodeid}) + "\n").encode())
                finish = {"op": "test.finish", "nodeid": nodeid, "outcome": "passed", "phase": "call",
                          "duration": 0.0, "message": ""}
                sent[("test.finish", nodeid)] = time.monotonic_ns()
                shim.sendall((json.dumps(finish) + "\n").encode())

        async def receive():
            async with websockets.connect(f"ws://{address}/ws", extra_headers={"Authorization": f"Bearer {token}"},
                                          max_size=None) as ws:
                # The WebSocket subscribes before it reads a request: once this
                # ping is answered, every event from now on reaches it.
                await ws.send(json.dumps({"id": "ready", "op": "ping"}))
                while json.loads(await asyncio.wait_for(ws.recv(), 60))["type"] != "reply":
                    pass
                sender = threading.Thread(target=send_all, daemon=True)
                started = time.monotonic()
                sender.start()
                while len(latencies) < total:
                    raw = await asyncio.wait_for(ws.recv(), 60)
                    now = time.monotonic_ns()
                    frame = json.loads(raw)
                    p = frame["payload"]
                    if frame["type"] == "lpd":
                        print("notice:", p, file=sys.stderr)
                        continue
                    if frame["type"] != "test" or p.get("run_id") != run_id:
                        continue
                    key = (p["event"], p["nodeid"])
                    if key in sent:
                        latencies.append((now - sent[key]) / 1e6)
                sender.join()
                return time.monotonic() - started

        elapsed = asyncio.run(receive())
        print("command: " + " ".join([sys.executable] + sys.argv))
        print(f"events: {len(latencies)} ({args.tests} tests, start + finish) in {elapsed:.2f} s, "
              f"rate {args.rate:g} tests/s")
        print(f"event -> WebSocket client latency (ms): p50 {percentile(latencies, 0.50):.3f}  "
              f"p95 {percentile(latencies, 0.95):.3f}  p99 {percentile(latencies, 0.99):.3f}  "
              f"max {max(latencies):.3f}")
    finally:
        subprocess.run([os.path.join(args.build, "lpd"), "stop", "--socket", sock_path], stdout=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
