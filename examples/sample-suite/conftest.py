"""The sample suite's helper server: started once through lpd, shared by
every test that asks for it.

`lpd_process` is lpd's pytest-xprocess-compatible fixture (the plugin is
loaded by `lpctl run`); the starter class is the one a pytest-xprocess
user writes. shared=True makes the session hold the helper: lpd stops it
when the session lets go, or when the test process dies (the last test of
this suite crashes it on purpose)."""

import re
import socket
import sys
from pathlib import Path

import pytest
from lpd_pytest.xprocess import ProcessStarter

HERE = Path(__file__).resolve().parent


class CounterServer(ProcessStarter):
    pattern = r"counter server listening on 127\.0\.0\.1:\d+"
    args = [sys.executable, str(HERE / "counter_server.py")]
    timeout = 60


@pytest.fixture(scope="session")
def counter_server(lpd_process):
    """(host, port) of the sample's counter server, started on first use."""
    _, log_path = lpd_process.ensure("sample-counter", CounterServer, shared=True)
    match = re.search(r"listening on (127\.0\.0\.1):(\d+)", Path(log_path).read_text())
    yield match.group(1), int(match.group(2))
    lpd_process.getinfo("sample-counter").terminate()


def visit(address):
    """One connection to the counter server: (its pid, its count of visits)."""
    with socket.create_connection(address, timeout=10) as connection:
        pid, served = connection.makefile().readline().split()
    return int(pid), int(served)
