"""The real helper server of the inner projects that test lpd's xprocess
fixture end to end (test_xprocess_reports.py, test_xprocess_shared.py),
and the top of the test module or conftest.py that starts and talks to it."""

import textwrap

# server.py of the inner project: a TCP server on a free port that says so
# ("ready port=N"), writes each request line to its log ("helper served
# ...") before it answers "ok <request>".
SERVER = textwrap.dedent("""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    print(f"ready port={s.getsockname()[1]}", flush=True)
    while True:
        c, _ = s.accept()
        data = c.recv(100).decode().strip()
        print(f"helper served {data}", flush=True)  # in the log before the answer
        c.sendall(b"ok " + data.encode() + b"\\n")
        c.close()
""")

# The top of a test module or conftest.py beside server.py: the
# pytest-xprocess Starter of SERVER, and talk(port, text), which sends one
# request and returns the answer.
STARTER = textwrap.dedent("""
    import os
    import re
    import socket
    import sys

    import pytest
    from xprocess import ProcessStarter

    HERE = os.path.dirname(os.path.abspath(__file__))

    class Starter(ProcessStarter):
        pattern = r"ready port=\\d+"
        args = [sys.executable, os.path.join(HERE, "server.py")]
        timeout = 60

    def talk(port, text):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(text.encode() + b"\\n")
            return s.recv(100).decode()
""")
