"""Starts descendants that try to escape their supervisor, then says so.

    spawn_descendants.py PIDFILE [--then wait|exit] [--ignore-term]

Forks two descendants that leave the process group and session:
  - "setsid": a child that calls setsid();
  - "doublefork": a child that forks a grandchild and exits, the grandchild
    calling setsid() (how a daemon detaches: its parent is gone, so it is
    re-parented to init or to the nearest subreaper).
Each writes "KIND PID" to PIDFILE (appending, one line) and then waits for
a signal forever; with --ignore-term they ignore SIGTERM, SIGINT and SIGHUP
so only SIGKILL ends them. Once both lines are written this process prints
"ready" (and the lines) on stdout and then waits forever (--then wait) or
exits 0 (--then exit). Every wait is on a pipe or a signal, no sleeps.
"""

import os
import signal
import sys


def descendant(kind, pidfile, ignore_term, report_fd):
    os.setsid()
    if ignore_term:
        for signo in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signo, signal.SIG_IGN)
    # Our own name in argv, so a leftover report can be recognised.
    line = f"{kind} {os.getpid()}\n"
    with open(pidfile, "a") as f:
        f.write(line)
    os.write(report_fd, line.encode())
    os.close(report_fd)
    # Nothing of the parent's stdout is kept: a run's log must not stay open through us.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    while True:
        signal.pause()


def main():
    pidfile = sys.argv[1]
    then = "wait"
    if "--then" in sys.argv:
        then = sys.argv[sys.argv.index("--then") + 1]
    ignore_term = "--ignore-term" in sys.argv
    read_fd, write_fd = os.pipe()

    if os.fork() == 0:
        os.close(read_fd)
        descendant("setsid", pidfile, ignore_term, write_fd)
    middle = os.fork()
    if middle == 0:
        os.close(read_fd)
        if os.fork() == 0:
            descendant("doublefork", pidfile, ignore_term, write_fd)
        os._exit(0)
    os.close(write_fd)
    os.waitpid(middle, 0)
    lines = b""
    while lines.count(b"\n") < 2:
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break
        lines += chunk
    os.close(read_fd)
    sys.stdout.write(lines.decode())
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if then == "exit":
        return 0
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
