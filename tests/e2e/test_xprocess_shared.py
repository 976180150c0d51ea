"""Issue 14, pytest-xprocess#144: a helper shared by xdist workers
(`ensure(..., shared=True)`) is started once, is never killed under a
worker that still uses it by another worker's teardown, and is stopped
after the last worker is done.

The inner run has three xdist groups on three workers (-n 3 --dist
loadgroup). Once all three hold the helper, two finish quickly and tear
down (their fixture calls terminate(), as pytest-xprocess's docs say to)
while the third is still in its test; it waits for their teardowns (a
coordinator in this test: no sleeps), then talks to the helper again:
with the old behaviour that is a ConnectionRefusedError."""

import os
import socketserver
import subprocess
import textwrap
import threading

from lpd_harness import EventWaiter, killed_if_left_running, source_shim_env, strict_project
from xprocess_port_server import SERVER, STARTER

PYTHON = "/usr/bin/python3"

CONFTEST = STARTER + textwrap.dedent("""
    def coordinator(line):
        \"\"\"One request to the outer test's coordinator; its answer.\"\"\"
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(os.environ["COORDINATOR"])
            s.sendall(line.encode() + b"\\n")
            return s.makefile().readline().strip()

    @pytest.fixture(scope="session")
    def server(xprocess, worker_id):
        pid, log = xprocess.ensure("shared-server", Starter, shared=True)
        coordinator(f"event ensured {worker_id}:{pid}")
        yield int(re.search(r"ready port=(\\d+)", log.read()).group(1))
        code = xprocess.getinfo("shared-server").terminate()
        coordinator(f"event released {worker_id}:terminate={code}")
""")

TESTS = textwrap.dedent("""
    import pytest

    from conftest import coordinator, talk

    @pytest.mark.xdist_group("a")
    @pytest.mark.parametrize("i", range(4))
    def test_quick_a(server, i):
        # Not done (nor torn down) before every worker holds the helper.
        assert coordinator("wait ensured 3") != "timeout"
        assert talk(server, f"a{i}") == f"ok a{i}\\n"

    @pytest.mark.xdist_group("b")
    @pytest.mark.parametrize("i", range(4))
    def test_quick_b(server, i):
        assert coordinator("wait ensured 3") != "timeout"
        assert talk(server, f"b{i}") == f"ok b{i}\\n"

    @pytest.mark.xdist_group("last")
    def test_outlives_the_others(server):
        assert talk(server, "before") == "ok before\\n"
        released = coordinator("wait released 2")
        assert released != "timeout", "the other workers did not tear down"
        # Both others ran terminate(): that only dropped their hold.
        assert released.count("terminate=0") == 2, released
        assert talk(server, "after") == "ok after\\n"
""")


class Coordinator(socketserver.ThreadingUnixStreamServer):
    """Where the inner workers meet: `event NAME DETAIL` records one,
    `wait NAME N` answers (the details, space-separated) once N of NAME
    were recorded, or `timeout` after 120 s. Waits are a Condition."""

    daemon_threads = True

    def __init__(self, path):
        self.events = {}
        self.changed = threading.Condition()
        super().__init__(path, CoordinatorHandler)


class CoordinatorHandler(socketserver.StreamRequestHandler):
    def handle(self):
        words = self.rfile.readline().decode().split()
        server = self.server
        with server.changed:
            if words[0] == "event":
                server.events.setdefault(words[1], []).append(words[2])
                server.changed.notify_all()
                answer = "ok"
            else:
                name, count = words[1], int(words[2])
                done = server.changed.wait_for(lambda: len(server.events.get(name, [])) >= count, timeout=120)
                answer = " ".join(server.events[name]) if done else "timeout"
        self.wfile.write(answer.encode() + b"\n")


def test_shared_helper_under_xdist(lpd, tmp_path):
    project = strict_project(tmp_path / "project", {"server.py": SERVER, "conftest.py": CONFTEST,
                                                    "test_shared.py": TESTS})
    coordinator = Coordinator(os.path.join(lpd.root, "coordinator.sock"))
    threading.Thread(target=coordinator.serve_forever, daemon=True).start()
    events = EventWaiter(lpd, types=["process.starting", "process.killed", "process.exited"])
    env = source_shim_env(lpd, PYTEST_PLUGINS="lpd_pytest", COORDINATOR=os.path.join(lpd.root, "coordinator.sock"))
    try:
        r = subprocess.run([PYTHON, "-m", "pytest", "-p", "no:xprocess", "-p", "no:cacheprovider", "-q", "-rA",
                            "-n", "3", "--dist", "loadgroup", "test_shared.py"],
                           cwd=project, env=env, capture_output=True, text=True, timeout=600)
    finally:
        coordinator.shutdown()
        coordinator.server_close()
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "9 passed" in out, out
    assert "ConnectionRefused" not in out, out
    ensured = coordinator.events["ensured"]
    pids = {detail.split(":")[1] for detail in ensured}
    assert len(ensured) == 3 and len(pids) == 1, ensured  # one process for the three workers
    started = events.wait("process.starting", name="shared-server")
    # Stopped once the last worker was done (its terminate(), or the end
    # of its connection): the one start's process.
    ended = events.wait("process.killed", name="shared-server")
    assert ended["pid"] == started["pid"] == int(pids.pop())
    assert not [e for e in events.seen if e["event"] == "process.starting"], f"started again: {events.seen}"
    events.close()


RESTART_TESTS = textwrap.dedent("""
    from conftest import coordinator, talk

    def test_keeps_its_helper_across_an_lpd_restart(server, xprocess):
        assert talk(server, "before") == "ok before\\n"
        coordinator("event holding 1")
        # The outer test kills lpd (-9), starts it again, and says so once
        # this session holds the helper again.
        assert coordinator("wait restarted 1") != "timeout"
        assert xprocess.getinfo("shared-server").isrunning()
        assert talk(server, "after") == "ok after\\n"
""")


def test_a_shared_helpers_lease_is_taken_again_after_lpd_restarts(lpd, tmp_path):
    """lpd keeps a leased helper 30 s after a restart for its holders to come
    back: the session's xprocess takes its lease again on a new connection,
    without a call of the test's, so the helper is not stopped under it."""
    project = tmp_path / "project"
    strict_project(project, {
        "server.py": SERVER,
        "conftest.py": CONFTEST.replace("def server(xprocess, worker_id)", "def server(xprocess)")
                               .replace("{worker_id}", "main"),
        "test_restart.py": RESTART_TESTS})
    coordinator = Coordinator(os.path.join(lpd.root, "coordinator.sock"))
    threading.Thread(target=coordinator.serve_forever, daemon=True).start()
    env = source_shim_env(lpd, PYTEST_PLUGINS="lpd_pytest", COORDINATOR=os.path.join(lpd.root, "coordinator.sock"))
    proc = subprocess.Popen([PYTHON, "-m", "pytest", "-p", "no:xprocess", "-p", "no:cacheprovider", "-q", "-rA",
                             "test_restart.py"], cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        with killed_if_left_running(proc):
            with coordinator.changed:
                assert coordinator.changed.wait_for(lambda: "holding" in coordinator.events, timeout=120)
            lpd.kill9()
            lpd.start()
            events = EventWaiter(lpd, types=["process.holders"])
            try:
                info = lpd.client().request("proc.info", name="shared-server", scope=str(project))
                assert info["ok"], info
                while info["result"].get("holders", 0) < 1:
                    info = {"result": events.wait("process.holders", timeout=60, name="shared-server")}
            finally:
                events.close()
            with coordinator.changed:
                coordinator.events["restarted"] = ["1"]
                coordinator.changed.notify_all()
            out, _ = proc.communicate(timeout=300)
    finally:
        coordinator.shutdown()
        coordinator.server_close()
    assert proc.returncode == 0 and "1 passed" in out, out
