"""A tiny helper server for the sample suite: it counts the connections it
has served and answers each with its pid and that count, so a test can tell
whether it talks to the same server as the test before it.

Prints "counter server listening on 127.0.0.1:PORT" once it accepts
connections: the ready line lpd waits for."""

import os
import socket

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
print(f"counter server listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
served = 0
while True:
    connection, _ = listener.accept()
    with connection:
        served += 1
        connection.sendall(f"{os.getpid()} {served}\n".encode())
