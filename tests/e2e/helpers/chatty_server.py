"""h14logcap: a helper server that writes as much log as it is told to.

Listens on the Unix socket named by argv[1] and prints "listening" once it
accepts. Each connection sends one command and gets one line back, after
the work is done (so the caller waits for an answer, not for a time):
  "burst N"  writes N MiB of numbered lines to stdout ("line K xxxx..."),
             flushed, then answers "done K" (K: the last line's number);
  "ping"     answers "pong"."""

import os
import socket
import sys

path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)  # a restart's predecessor left it
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(8)
print("listening", flush=True)
out = sys.stdout.buffer
number = 0
while True:
    conn, _ = server.accept()
    with conn:
        command = conn.recv(100).decode().split()
        if command and command[0] == "burst":
            target = int(command[1]) * 1024 * 1024
            written = 0
            while written < target:
                chunk = b"".join(b"line %d %s\n" % (number + i, b"x" * 100) for i in range(1000))
                number += 1000
                out.write(chunk)
                written += len(chunk)
            out.flush()
            conn.sendall(b"done %d\n" % (number - 1))
        elif command and command[0] == "ping":
            conn.sendall(b"pong\n")
