#!/usr/bin/env python3
"""A stand-in for a helper server (a database, a mock service) in lpd's
end-to-end tests and benchmark. It prints some lines, optionally waits,
then prints its ready line (with a CLOCK_MONOTONIC timestamp, so a
benchmark can tell when it was written) and stays up until killed.

The sleep for --delay simulates a slow start; nothing here waits for lpd."""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def write_log(size):
    """About `size` bytes of 100-byte log lines."""
    line = "log " + "y" * 95 + "\n"
    written = 0
    while written < size:
        sys.stdout.write(line * 1000)
        written += len(line) * 1000
    sys.stdout.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--delay", type=float, default=0.0, help="seconds before the ready line")
    p.add_argument("--ready", default="ready to accept connections")
    p.add_argument("--noise", type=int, default=0, help="lines printed before the ready line")
    p.add_argument("--exit", type=int, default=None, help="exit with this code instead of becoming ready")
    p.add_argument("--abort", action="store_true", help="die by SIGABRT instead of becoming ready")
    p.add_argument("--never", action="store_true", help="never print the ready line")
    p.add_argument("--children", type=int, default=0, help="start this many `sleep` children first")
    p.add_argument("--ignore-term", action="store_true", help="ignore SIGTERM (needs SIGKILL)")
    p.add_argument("--count-file", help="append one line per start to this file")
    p.add_argument("--long-line", type=int, default=0, help="bytes of one line written before the ready line")
    p.add_argument("--serve", action="store_true", help="listen on TCP port 0 and print it in the ready line")
    p.add_argument("--log-bytes", type=int, default=0, help="write this many bytes of log after ready")
    p.add_argument("--prefill-bytes", type=int, default=0, help="write this many bytes of log before ready")
    args = p.parse_args()

    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.count_file:
        with open(args.count_file, "a") as f:
            f.write(f"{os.getpid()}\n")
    say(f"helper starting pid={os.getpid()} cwd={os.getcwd()} HELPER_ENV={os.environ.get('HELPER_ENV', '')}"
        f" HOME={os.environ.get('HOME', '')}")
    for i in range(args.children):
        child = subprocess.Popen(["sleep", "1000"])
        say(f"child {child.pid}")
    for i in range(args.noise):
        say(f"noise line {i}")
    if args.long_line:
        chunk = "x" * 65536
        left = args.long_line
        while left > 0:
            sys.stdout.write(chunk[:min(left, len(chunk))])
            left -= len(chunk)
        sys.stdout.write("\n")
        sys.stdout.flush()
    write_log(args.prefill_bytes)
    if args.delay:
        time.sleep(args.delay)  # a slow start, on purpose
    if args.exit is not None:
        say(f"giving up with exit code {args.exit}")
        sys.exit(args.exit)
    if args.abort:
        say("aborting")
        os.abort()
    server = None
    if args.serve:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(16)
    if not args.never:
        port = f" port={server.getsockname()[1]}" if server else ""
        say(f"{args.ready}{port} t={time.monotonic():.9f}")
    write_log(args.log_bytes)
    signal.signal(signal.SIGUSR1, lambda *_: say("got usr1"))
    if server:
        while True:
            conn, _ = server.accept()
            conn.sendall(b"hello\n")
            conn.close()
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
