"""Issue 14, h14ensure: what `proc.ensure` and `lpctl ensure` say is what
happened. A reused helper started with another argv or pattern is reused,
as pytest-xprocess reuses it, but the reply names what differs and lpctl
and the xprocess fixture warn; a call that joined a start under way does
not say "started"; a helper with no pattern is not called ready once it
has exited; a scope is one key however it is spelled.

Every wait is an event: a reply, a pipe or FIFO, a barrier request on the
same connection (answered after the ensure was handled), lpd's events."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading

from lpd_harness import EventWaiter, LPCTL_BIN, RawClient, source_shim_env, strict_project

HELPER = os.path.join(os.path.dirname(__file__), "helpers", "helper_server.py")
PY = sys.executable
PATTERN = "ready to accept"
BARRIER_ID = 990001


def ensure(lpd, name, scope, *helper_args, pattern=PATTERN, json_out=True, check=True, cwd=None):
    args = ["--json"] if json_out else []
    args += ["ensure", name, "--scope", scope, "--cwd", cwd or scope]
    if pattern is not None:
        args += ["--pattern", pattern]
    return lpd.lpctl(*args, "--", PY, HELPER, *helper_args, check=check)


def warnings_in(stderr):
    return [line for line in stderr.splitlines() if "warning" in line]


# -- reuse with other arguments: reused, but said -----------------------------------


def test_reuse_with_other_argv_and_pattern_is_said(lpd, work_dir):
    first = json.loads(ensure(lpd, "db", work_dir).stdout)
    assert first["outcome"] == "started" and first["reused"] is False and first["differs"] == []

    same = ensure(lpd, "db", work_dir)
    reply = json.loads(same.stdout)
    assert reply["outcome"] == "reused" and reply["reused"] is True and reply["differs"] == []
    assert warnings_in(same.stderr) == []

    other = ensure(lpd, "db", work_dir, "--noise", "2", pattern="accept connections")
    reply = json.loads(other.stdout)
    assert reply["pid"] == first["pid"], "the running one is reused, as pytest-xprocess does"
    assert reply["outcome"] == "reused" and reply["differs"] == ["argv", "pattern"]
    warned = warnings_in(other.stderr)
    assert len(warned) == 1, other.stderr
    assert warned[0].startswith("lpctl: warning: db already runs") and "argv, pattern" in warned[0]

    human = ensure(lpd, "db", work_dir, pattern="accept connections", json_out=False, cwd="/")
    assert f"db: already running (pid {first['pid']}), reused" in human.stdout
    warned = warnings_in(human.stderr)
    assert len(warned) == 1 and "pattern, cwd" in warned[0], human.stderr
    lpd.lpctl("kill", "--scope", work_dir, "db")


def test_a_bad_pattern_is_refused_even_when_it_would_reuse(lpd, work_dir):
    ensure(lpd, "db", work_dir)
    bad = ensure(lpd, "db", work_dir, pattern="ready(", check=False)
    assert bad.returncode != 0 and "invalid pattern" in bad.stderr
    lpd.lpctl("kill", "--scope", work_dir, "db")


# -- a second ensure joins a start under way --------------------------------------------


class BarrierRelay:
    """A socket lpctl talks to instead of lpd's: bytes go through unchanged,
    except that after lpctl's first request line a ping of our own follows
    on the same connection; its answer (dropped here) means lpd has handled
    lpctl's request, and sets `handled`."""

    def __init__(self, lpd_socket, path):
        self.lpd_socket = lpd_socket
        self.path = path
        self.handled = threading.Event()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        down, _ = self.listener.accept()
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        up.connect(self.lpd_socket)
        threading.Thread(target=self._upstream, args=(down, up), daemon=True).start()
        pending = b""
        while True:
            data = up.recv(65536)
            if not data:
                down.close()
                return
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if json.loads(line).get("id") == BARRIER_ID:
                    self.handled.set()
                    continue
                down.sendall(line + b"\n")

    def _upstream(self, down, up):
        pending, lines = b"", 0
        while True:
            data = down.recv(65536)
            if not data:
                up.shutdown(socket.SHUT_WR)
                return
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                up.sendall(line + b"\n")
                lines += 1
                if lines == 2:  # hello, then the ensure
                    up.sendall((json.dumps({"id": BARRIER_ID, "op": "ping"}) + "\n").encode())

    def close(self):
        self.listener.close()


def test_a_second_ensure_joins_the_start_and_says_so(lpd, work_dir):
    go = os.path.join(work_dir, "go")
    os.mkfifo(go)
    command = ["sh", "-c", f'echo waiting; read word < "{go}"; echo "ready to accept $word"; exec sleep 600']
    env = {"PATH": os.environ["PATH"]}
    starter = RawClient(lpd.socket)
    starter.hello()
    starter.send_raw(json.dumps({"id": 1, "op": "proc.ensure", "name": "slow", "scope": work_dir, "argv": command,
                                 "pattern": PATTERN, "cwd": work_dir, "env": env}) + "\n")
    assert starter.request("ping")["ok"], "answered after the ensure was handled: the start is under way"

    joiner = RawClient(lpd.socket)
    joiner.hello()
    joiner.send_raw(json.dumps({"id": 1, "op": "proc.ensure", "name": "slow", "scope": work_dir,
                                "argv": command + ["x"], "pattern": PATTERN, "cwd": work_dir, "env": env}) + "\n")
    assert joiner.request("ping")["ok"]

    relay = BarrierRelay(lpd.socket, os.path.join(work_dir, "relay.sock"))
    cli = subprocess.Popen([LPCTL_BIN, "--socket", relay.path, "ensure", "slow", "--scope", work_dir, "--cwd",
                            work_dir, "--pattern", PATTERN, "--", *command], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=lpd.env())
    try:
        assert relay.handled.wait(60), "lpctl's ensure never reached lpd"
        with open(go, "w") as fifo:  # the helper is ready only now
            fifo.write("now\n")
        out, err = cli.communicate(timeout=60)
    finally:
        relay.close()
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, err
    first = starter.read_message()
    assert first["ok"] and first["result"]["outcome"] == "started" and first["result"]["differs"] == []
    second = joiner.read_message()
    assert second["ok"] and second["result"]["outcome"] == "joined" and second["result"]["reused"] is False
    assert second["result"]["differs"] == ["argv"] and second["result"]["pid"] == first["result"]["pid"]
    assert "slow: joined a start already under way" in out and "started" not in out, out
    assert "ready to accept now" in out and warnings_in(err) == []
    starter.close()
    joiner.close()
    lpd.lpctl("kill", "--scope", work_dir, "slow")


# -- no pattern: ready once spawned, never once exited -----------------------------------


def test_no_pattern_says_nothing_was_waited_for(lpd, work_dir):
    result = ensure(lpd, "plain", work_dir, "--never", pattern=None, json_out=False)
    assert "plain: started (pid " in result.stdout
    assert "no --pattern, so nothing was waited for" in result.stdout and "ready after" not in result.stdout
    reply = json.loads(ensure(lpd, "plain", work_dir, "--never", pattern=None).stdout)
    assert reply["outcome"] == "reused" and reply["pattern"] is None and reply["state"] == "ready"
    lpd.lpctl("kill", "--scope", work_dir, "plain")


def test_no_pattern_helper_that_exits_at_once_is_never_called_ready(lpd, work_dir):
    events = EventWaiter(lpd, types=["process.exited"])
    try:
        result = lpd.lpctl("ensure", "quick", "--scope", work_dir, "--cwd", work_dir, "--", "sh", "-c", "exit 3",
                           check=False)
        ended = events.wait("process.exited", name="quick")
    finally:
        events.close()
    assert ended["exit_status"]["code"] == 3, ended
    if result.returncode == 0:
        # It still ran when lpd answered: lpctl says nothing was waited for,
        # never that it was ready after some time.
        assert "no --pattern, so nothing was waited for: it was running when lpd answered" in result.stdout
        assert "ready after" not in result.stdout
    else:
        # It had exited when lpd answered: that, with its status, is the answer.
        assert "exited with exit code 3 right after it started" in result.stderr, result.stderr
        assert result.stdout == ""
    record = lpd.lpctl_json("ps", "-a")["processes"]
    quick = [p for p in record if p["name"] == "quick"]
    assert quick and quick[0]["state"] == "exited", quick


# -- scopes: one spelling --------------------------------------------------------------


def test_scope_spellings_name_one_helper(lpd, work_dir):
    project = os.path.join(work_dir, "proj")
    os.mkdir(project)
    first = json.loads(lpd.lpctl("--json", "ensure", "db", "--scope", project + "/./sub/..//", "--cwd", project,
                                 "--pattern", PATTERN, "--", PY, HELPER).stdout)
    assert first["scope"] == project and first["full_name"] == project + "::db"
    for spelling in (project + "/", "/" + project, project + "/.", os.path.join(project, "x", "..")):
        again = json.loads(lpd.lpctl("--json", "ensure", "db", "--scope", spelling, "--cwd", project, "--pattern",
                                     PATTERN, "--", PY, HELPER).stdout)
        assert again["outcome"] == "reused" and again["pid"] == first["pid"], spelling
    listed = [p for p in lpd.lpctl_json("ps")["processes"] if p["name"] == "db"]
    assert len(listed) == 1 and listed[0]["scope"] == project
    # The full name with another spelling finds it too.
    killed = lpd.lpctl_json("kill", project + "/sub/..::db")
    assert killed["pid"] == first["pid"]


def test_relative_scope_is_refused_clearly(lpd, work_dir):
    for scope in ("proj", "./proj", "../x"):
        r = lpd.lpctl("ensure", "db", "--scope", scope, "--pattern", PATTERN, "--", PY, HELPER, check=False)
        assert r.returncode != 0 and "is relative" in r.stderr, r.stderr
    assert [p for p in lpd.lpctl_json("ps", "-a")["processes"] if p["name"] == "db"] == []


# -- the xprocess fixture warns, and never fails a suite for it ----------------------------

INNER = r'''
import os
import select
import signal
import sys

from lpd_pytest.xprocess import ProcessStarter

HELPER = {helper!r}


class First(ProcessStarter):
    pattern = "ready to accept"
    args = [sys.executable, HELPER]
    timeout = 60


class Other(ProcessStarter):
    pattern = "accept connections"
    args = [sys.executable, HELPER, "--noise", "1"]
    timeout = 60


def test_first(xprocess):
    xprocess.ensure("srv", First)


def test_other_starter_reuses_it(xprocess):
    pid = xprocess.getinfo("srv").pid
    assert xprocess.ensure("srv", Other)[0] == pid
    assert xprocess.ensure("srv", Other)[0] == pid  # warned once per difference
    assert xprocess.getinfo("srv").terminate() == 1


def test_a_helper_answered_in_process_that_dies_is_started_again(xprocess):
    pid = xprocess.ensure("cached", First)[0]
    for _ in range(3):  # lpd's answers, then the fixture's own (a pidfd of it)
        assert xprocess.ensure("cached", First)[0] == pid
    assert xprocess.starts["cached"] == 1
    pidfd = os.pidfd_open(pid)
    os.kill(pid, signal.SIGKILL)  # a crash: nobody told the fixture
    assert select.select([pidfd], [], [], 60)[0]
    os.close(pidfd)
    again = xprocess.ensure("cached", First)[0]
    assert again != pid and xprocess.starts["cached"] == 2
    assert xprocess.ensure("cached", First)[0] == again
    assert xprocess.getinfo("cached").terminate() == 1
    assert xprocess.ensure("cached", First)[0] not in (pid, again), "terminate() forgets what it knew"
    assert xprocess.getinfo("cached").terminate() == 1
'''


def test_xprocess_fixture_warns_on_a_differing_reuse_under_filterwarnings_error(lpd, tmp_path):
    project = strict_project(tmp_path / "project", {"test_differs.py": textwrap.dedent(INNER.format(helper=HELPER))})
    env = source_shim_env(lpd, PYTEST_PLUGINS="lpd_pytest")
    r = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-p", "no:xprocess", "-p", "no:cacheprovider", "-q",
                        "test_differs.py"], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "3 passed" in r.stdout, r.stdout[-5000:] + r.stderr[-3000:]
    warned = [line for line in (r.stdout + r.stderr).splitlines() if line.startswith("lpd_pytest: warning:")]
    assert len(warned) == 1, r.stdout + r.stderr
    assert "helper 'srv' already runs" in warned[0] and "argv and pattern" in warned[0], warned
