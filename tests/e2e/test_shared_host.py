"""Issue 11: a shared CI host is safe. One root lpd serves throwaway users who
do not trust each other; every test here plays the attacker (user B, or a
user's own command) against another user's runs, pauses and helpers, and
checks what lpd lets through. Users and the group are created for this
module and removed afterwards."""

import grp
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from lpd_harness import LPCTL_BIN, LPD_BIN, PYTHON, EventWaiter, Lpd, RawClient, short_tempdir, write_tests, user_admin, throwaway_users, \
    staged_install

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates users and runs a root lpd")

GROUP = "lpdsh"         # may connect to the socket
ADMIN_GROUP = "lpdshadm"  # lpd's --admin-group
USERS = {"a": "lpdsh_a", "b": "lpdsh_b", "admin": "lpdsh_adm"}


# -- users, the daemon, and acting as a user ---------------------------------

@pytest.fixture(scope="module")
def users():
    with throwaway_users(USERS, GROUP, ADMIN_GROUP, admins=("admin",)) as entries:
        yield entries

@pytest.fixture(scope="module")
def tools():
    """lpctl where every throwaway user may execute it, wherever the build
    lives (a clone under /root is not theirs to enter): the staged prefix
    (h18try, issue 18)."""
    return {"lpctl": staged_install()["lpctl"]}


@pytest.fixture
def root_lpd(users):
    d = Lpd(lpd_bin=staged_install()["lpd"])  # its runs load the staged shim (h18try)
    os.chmod(d.root, 0o755)  # users must reach the socket inside
    d.start("--socket-group", GROUP, "--admin-group", ADMIN_GROUP)
    yield d
    d.stop()
    shutil.rmtree(d.root, ignore_errors=True)


def groups_of(user):
    return [g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem]


def user_env(user, lpd, **extra):
    env = {"PATH": "/usr/bin:/bin", "HOME": user.pw_dir, "USER": user.pw_name, "LPD_SOCKET": lpd.socket}
    env.update(extra)
    return env


def as_user(user, lpd, tools, *args, cwd=None, check=False, timeout=60, env=None):
    """Runs lpctl as `user` (their uid, gid and groups), like a runner would."""
    result = subprocess.run([tools["lpctl"], *args], user=user.pw_uid, group=user.pw_gid,
                            extra_groups=groups_of(user), cwd=cwd or user.pw_dir,
                            env=env or user_env(user, lpd), capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def user_client(user, lpd):
    """A raw protocol connection made by `user`'s own process (SO_PEERCRED is
    theirs), after hello (see user_socket)."""
    client = user_socket(user, lpd)
    client.sock.settimeout(10)
    client.hello()
    return client


def user_workdir(user):
    """A directory `user` owns, outside any other user's reach."""
    path = tempfile.mkdtemp(prefix="lpd-sh-", dir="/tmp")
    os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(path, 0o700)
    return path


class Pinger:
    """Pings lpd from a thread for as long as it runs and records each round
    trip, so a test can show the daemon kept serving everyone during an
    attack. A blocked event loop shows as a ping that never comes back."""

    def __init__(self, lpd):
        self.client = lpd.client()
        self.latencies = []
        self.failures = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                reply = self.client.request("ping")
                assert reply["ok"], reply
            except Exception as e:  # noqa: BLE001 - recorded, asserted by the test
                self.failures.append(repr(e))
                return
            self.latencies.append(time.monotonic() - start)
            self._stop.wait(0.01)

    def stop(self):
        """Returns (count, worst seconds); asserts every ping was answered."""
        self._stop.set()
        self._thread.join(timeout=30)
        self.client.close()
        assert not self.failures, self.failures
        assert self.latencies, "no ping completed"
        return len(self.latencies), max(self.latencies)


# -- descriptors (helper A) ----------------------------------------------------
import select  # noqa: E402 - this section's own imports, kept beside it
import signal  # noqa: E402


# A command's view of its own descriptors: number -> what it points at
# (None for the listing's own directory descriptor, closed by then).
LIST_FDS = r"""
import json, os
out = {}
for name in os.listdir("/proc/self/fd"):
    try:
        out[name] = os.readlink("/proc/self/fd/" + name)
    except OSError:
        out[name] = None
print("FDS " + json.dumps(out), flush=True)
"""

O_CLOEXEC = 0o2000000


def fds_seen(output):
    line = next((l for l in output.splitlines() if "FDS {" in l), None)
    assert line is not None, output
    return json.loads(line[line.index("FDS ") + 4:])


def assert_only_stdio(fds, what):
    """0, 1, 2 and at most the listing's own (closed) directory: nothing of lpd's."""
    extra = {fd: target for fd, target in fds.items() if fd not in ("0", "1", "2")}
    assert all(target is None for target in extra.values()) and len(extra) <= 1, \
        f"{what} inherited descriptors: {extra}"


def fds_without_cloexec(pid):
    """lpd's descriptors from 3 up that a child would inherit, with what they are."""
    leaks = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        if int(name) < 3:
            continue
        try:
            with open(f"/proc/{pid}/fdinfo/{name}") as f:
                flags = int(next(l for l in f if l.startswith("flags:")).split()[1], 8)
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except (FileNotFoundError, ProcessLookupError):
            continue  # closed meanwhile
        if not flags & O_CLOEXEC:
            leaks[int(name)] = target
    return leaks


def as_user_popen(user, lpd, tools, *args, cwd, stdin=subprocess.DEVNULL):
    return subprocess.Popen([tools["lpctl"], *args], user=user.pw_uid, group=user.pw_gid,
                            extra_groups=groups_of(user), cwd=cwd, env=user_env(user, lpd), stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def user_pytest(user, lpd, test_dir, *args, stdin=subprocess.DEVNULL):
    """`user`'s own pytest with the lpd plugin, talking to lpd directly."""
    env = user_env(user, lpd, PYTHONPATH=staged_install()["pythonpath"], PYTEST_PLUGINS="lpd_pytest")
    return subprocess.Popen([PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s", *args], cwd=test_dir,
                            user=user.pw_uid, group=user.pw_gid, extra_groups=groups_of(user), env=env,
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def socket_made_by(user, make):
    """A socket `make()` created in a child that became `user` (so the kernel
    names them in SO_PEERCRED), handed back here over a socketpair."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        try:
            parent.close()
            os.setgroups(groups_of(user))
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            made = make()  # held: a temporary would be closed before it is sent
            socket.send_fds(child, [b"x"], [made.fileno()])
        finally:
            os._exit(0)
    child.close()
    _, fds, _, _ = socket.recv_fds(parent, 1, 1)
    os.waitpid(pid, 0)
    parent.close()
    return socket.socket(fileno=fds[0])


def user_socket(user, lpd):
    """A bare connection made by `user`'s own process, before any hello."""
    def connect():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(lpd.socket)
        return s
    sock = socket_made_by(user, connect)
    client = RawClient.__new__(RawClient)
    client.sock = sock
    client.buf = b""
    client.next_id = 1
    return client


def first_reply(client, timeout=30):
    """Sends hello and returns lpd's first answer (a reply or a connection
    error). lpd may have answered and closed before the hello went out."""
    try:
        client.send_raw(json.dumps({"id": 1, "op": "hello", "role": "cli", "protocol": 1}) + "\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    return client.read_message(timeout=timeout)


def read_until(proc, marker, timeout=120):
    """The first line of `proc`'s output holding `marker`, from it on (pytest
    -s prints a test's output after its file name). Reads the pipe itself,
    with select, so nothing waits unseen in a file object's buffer."""
    fd = proc.stdout.fileno()
    buf = getattr(proc, "unread", b"")
    deadline = time.monotonic() + timeout
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            text = line.decode(errors="replace")
            if marker in text:
                proc.unread = buf
                return text[text.index(marker):]
        left = deadline - time.monotonic()
        assert left > 0 and select.select([fd], [], [], left)[0], f"{marker!r} never came; unread: {buf!r}"
        chunk = os.read(fd, 65536)
        assert chunk, f"{marker!r} never came: the output ended; unread: {buf!r}"
        buf += chunk


def test_runs_and_helpers_see_only_their_own_descriptors(users, root_lpd, tools):
    a, b = users["a"], users["b"]
    # B is connected several times over, one of them subscribed to events.
    b_clients = [user_client(b, root_lpd) for _ in range(4)]
    subscribed = user_client(b, root_lpd)
    assert subscribed.request("events.subscribe")["ok"]
    work = user_workdir(a)
    try:
        # Every descriptor lpd holds now (B's connections among them) is close-on-exec.
        assert fds_without_cloexec(root_lpd.pid) == {}

        ran = as_user(a, root_lpd, tools, "run", "--", PYTHON, "-I", "-S", "-c", LIST_FDS, cwd=work)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert_only_stdio(fds_seen(ran.stdout), "A's `lpctl run` command")

        ensured = as_user(a, root_lpd, tools, "--json", "ensure", "lister", "--pattern", "^FDS ", "--", PYTHON, "-I",
                          "-S", "-c", LIST_FDS + "import signal; signal.pause()\n", cwd=work)
        assert ensured.returncode == 0, ensured.stdout + ensured.stderr
        assert_only_stdio(fds_seen(json.loads(ensured.stdout)["ready_line"]), "A's helper")
        as_user(a, root_lpd, tools, "kill", "lister", check=True)
        assert fds_without_cloexec(root_lpd.pid) == {}
    finally:
        for c in b_clients + [subscribed]:
            c.close()
        shutil.rmtree(work, ignore_errors=True)


def test_a_daemonized_lpd_keeps_its_log_from_children():
    """lpd.log is written through spdlog's fopen; it must not reach children either."""
    root = short_tempdir()
    try:
        started = subprocess.run([LPD_BIN, "start", "--socket", os.path.join(root, "lpd.sock"), "--state-dir",
                                  os.path.join(root, "state")], capture_output=True, text=True, timeout=60)
        assert started.returncode == 0, started.stderr
        pid = int(started.stdout.split("(pid ")[1].split(")")[0])
        pidfd = os.pidfd_open(pid)
        try:
            targets = {os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")}
            assert os.path.join(root, "state", "lpd.log") in targets
            assert fds_without_cloexec(pid) == {}
        finally:
            os.kill(pid, signal.SIGTERM)
            select.select([pidfd], [], [], 60)  # lpd is not our child: its pidfd says when it is gone
            os.close(pidfd)
    finally:
        shutil.rmtree(root, ignore_errors=True)


FORGER = r"""
import json, os
uid = os.getuid()
hit = set()
for name in os.listdir("/proc/self/fd"):
    fd = int(name)
    if fd < 3:
        continue
    for i in range(1, 40):
        line = {"id": i, "ok": True, "result": {"status": "resumed", "result": True,
                                                "reason": "forged by uid %d" % uid, "pause_id": "x"}}
        try:
            os.write(fd, (json.dumps(line) + "\n").encode())
            hit.add(fd)
        except OSError:
            break
print("FORGED into %s" % sorted(hit), flush=True)
import signal; signal.pause()
"""


def test_another_users_helper_cannot_forge_a_pause_decision(users, root_lpd, tools):
    a, b = users["a"], users["b"]
    work_a, work_b = user_workdir(a), user_workdir(b)
    write_tests(work_a, "test_forge.py", "from lpd_pytest import checkpoint\n"
                                         "def test_decision():\n"
                                         "    d = checkpoint(task='forge target', timeout=120)\n"
                                         "    print('DECISION', d.status, d.result, repr(d.reason), flush=True)\n")
    os.chown(os.path.join(work_a, "test_forge.py"), a.pw_uid, a.pw_gid)
    events = EventWaiter(root_lpd, types=["pause.created"])
    proc = as_user_popen(a, root_lpd, tools, "run", "--", PYTHON, "-m", "pytest", "-q", "-s", "-p",
                         "no:cacheprovider", "test_forge.py", cwd=work_a)
    try:
        pause = events.wait("pause.created")
        assert pause["owner_uid"] == a.pw_uid
        # B's helper writes a forged "resumed" reply into every descriptor it has.
        forged = as_user(b, root_lpd, tools, "ensure", "forger", "--pattern", "^FORGED", "--", PYTHON, "-I", "-S",
                         "-c", FORGER, cwd=work_b)
        assert forged.returncode == 0, forged.stdout + forged.stderr
        as_user(a, root_lpd, tools, "resume", pause["pause_id"], "--result", "false", "--reason", "decided by A",
                check=True)
        out, err = proc.communicate(timeout=120)
        assert "DECISION resumed False 'decided by A'" in out, out + err
        assert "forged" not in out
        assert forged.stdout.count("FORGED into []") == 1, forged.stdout
        as_user(b, root_lpd, tools, "kill", "forger", check=True)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        events.close()
        shutil.rmtree(work_a, ignore_errors=True)
        shutil.rmtree(work_b, ignore_errors=True)


def test_lpctl_ensure_ends_when_lpd_is_killed(users, root_lpd, tools):
    """A helper holding lpctl's connection used to keep `lpctl ensure` waiting
    for its whole timeout after lpd died."""
    a = users["a"]
    work = user_workdir(a)
    events = EventWaiter(root_lpd, types=["process.starting"])
    proc = as_user_popen(a, root_lpd, tools, "ensure", "mute", "--timeout", "600", "--pattern", "never printed",
                         "--", "sleep", "3600", cwd=work)
    helper = None
    try:
        helper = events.wait("process.starting", name="mute")["pid"]
        root_lpd.kill9()
        code = proc.wait(timeout=60)
        err = proc.stderr.read()
        assert code == 2, err
        assert "closed the connection" in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if helper:
            os.kill(helper, signal.SIGKILL)  # helpers outlive lpd on purpose
        events.close()
        shutil.rmtree(work, ignore_errors=True)


PAUSED_TEST = """
import sys
from lpd_pytest import checkpoint
def test_paused():
    d = checkpoint(task="held", timeout=300)
    print("DECISION", d.status, d.result, flush=True)
"""

LATE_TEST = """
import os, sys
from lpd_pytest import checkpoint
from lpd_pytest.client import Connection, LpdError
def test_late(live_pause):
    raw = Connection(os.environ["LPD_SOCKET"], role="test")  # connected while lpd has descriptors
    print("WAITING", flush=True)
    sys.stdin.readline()
    try:
        got = raw.request("pause.request", {"run_id": live_pause.run_id, "kind": "checkpoint", "task": "raw",
                                            "timeout": 300}, timeout=None)
        print("LATE-RAW", got["status"], flush=True)
    except LpdError as e:
        print("LATE-ERROR", e.code, e.message, flush=True)
    # The plugin asks again until lpd can take the pause.
    d = checkpoint(task="late", timeout=300)
    print("LATE-DECISION", d.status, d.result, flush=True)
"""


def test_descriptor_pressure_turns_newcomers_away_and_marks_no_pause_stale(users, tools):
    a, b = users["a"], users["b"]
    lpd = Lpd(lpd_bin=staged_install()["lpd"])
    os.chmod(lpd.root, 0o755)
    lpd.start("--socket-group", GROUP, "--admin-group", ADMIN_GROUP, rlimit_nofile=64)
    work = user_workdir(a)
    for name, source in (("test_paused.py", PAUSED_TEST), ("test_late.py", LATE_TEST)):
        write_tests(work, name, source)
        os.chown(os.path.join(work, name), a.pw_uid, a.pw_gid)
    events = EventWaiter(lpd, types=["pause.created", "pause.stale", "pause.resumed"])
    procs, flood = [], []
    pinger = keeper = None
    try:
        # Live pauses: A's pytest processes, each blocked in checkpoint().
        for _ in range(3):
            procs.append(user_pytest(a, lpd, work, "test_paused.py"))
        paused = [events.wait("pause.created") for _ in procs]
        # One more, connected, that asks for its pause only once lpd is out of descriptors.
        late = user_pytest(a, lpd, work, "test_late.py", stdin=subprocess.PIPE)
        procs.append(late)
        read_until(late, "WAITING")
        pinger = Pinger(lpd)
        keeper = lpd.client()  # an existing client: served throughout

        # B connects until lpd has no descriptor left: the first connection
        # told "unavailable" marks it. Each is answered, none hangs.
        refused = None
        for _ in range(80):
            client = user_socket(b, lpd)
            reply = first_reply(client)
            assert reply is not None, "lpd closed a connection without a word"
            if reply["ok"]:
                flood.append(client)
                continue
            refused = reply
            client.close()
            break
        assert refused is not None, "lpd never ran out of descriptors"
        assert refused["id"] is None and refused["error"]["code"] == "unavailable", refused
        assert "out of file descriptors (EMFILE)" in refused["error"]["message"], refused

        # Still out of descriptors: A is turned away with the reason, lpctl says it.
        denied = as_user(a, lpd, tools, "ping", cwd=work)
        assert denied.returncode == 1, denied.stdout + denied.stderr
        assert "unavailable" in denied.stderr and "out of file descriptors" in denied.stderr, denied.stderr
        # A pause asked for now cannot be watched: a clear error, not a pause that is stale at once.
        late.stdin.write("go\n")
        late.stdin.flush()
        answer = read_until(late, "LATE-")
        assert answer.startswith("LATE-ERROR unavailable"), answer
        assert "out of file descriptors" in answer, answer
        # Its checkpoint() now asks again and again; nothing is paused meanwhile.
        # Existing clients are served throughout.
        assert keeper.request("ping")["ok"]

        # Pressure released: lpd takes newcomers again.
        for client in flood:
            client.close()
        flood = []
        served = None
        for _ in range(20):  # each try waits for lpd's answer; "unavailable" means "try again"
            client = user_socket(a, lpd)
            served = first_reply(client)
            client.close()
            if served and served["ok"]:
                break
        assert served and served["ok"], served
        lpd.ping()
        # The late checkpoint gets its pause once lpd can watch it.
        paused.append(events.wait("pause.created", task="late"))
        for pause in paused:
            as_user(a, lpd, tools, "resume", pause["pause_id"], "--result", "true", cwd=work, check=True)
        assert read_until(late, "LATE-DECISION") == "LATE-DECISION resumed True"
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, out
            if proc is not late:
                assert "DECISION resumed True" in out, out
        pauses = lpd.lpctl_json("ls", "-a")
        assert sorted(p["pause_id"] for p in pauses) == sorted(p["pause_id"] for p in paused)
        assert all(p["status"] == "resumed" for p in pauses), pauses
        assert not [e for e in events.seen if e["event"] == "pause.stale"], events.seen
        pinger.stop()  # every ping answered, before, during and after the pressure
        pinger = None
        assert "accepting connections again" in lpd.log_text()
    finally:
        for client in flood:
            client.close()
        if pinger is not None:
            pinger._stop.set()
        if keeper is not None:
            keeper.close()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        events.close()
        lpd.stop()
        shutil.rmtree(lpd.root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


# -- end descriptors ------------------------------------------------------------


# -- access to content, per-connection limits (helper B) ----------------------
# Everything B can get of A's objects, tried from B's side: lists and event
# streams show A's metadata and none of A's content; reading A's content is
# permission_denied. Then one connection tries to make lpd hold more than
# its share: it is refused (limit_exceeded) or paced, and lpd gives its
# memory back once the connection goes.

class Recorder:
    """Every byte lpd sends one connection, read on a thread until the
    connection ends: the whole of what that peer ever saw, raw and parsed."""

    def __init__(self, client):
        self.client = client
        self.raw = bytearray()
        self.messages = []
        self.ended = False
        self._pending = client.buf
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        self.client.sock.settimeout(None)
        while True:
            with self._cond:
                self.raw += self._pending
                while b"\n" in self._pending:
                    line, self._pending = self._pending.split(b"\n", 1)
                    self.messages.append(json.loads(line))
                self._cond.notify_all()
            try:
                chunk = self.client.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            self._pending += chunk
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def wait_for(self, predicate, timeout=60):
        """Blocks until predicate(messages) holds; fails if the stream ends first."""
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(self.messages) or self.ended, timeout)
            assert ok and predicate(self.messages), f"not seen in {len(self.messages)} messages (ended: {self.ended})"

    def close(self):
        try:
            self.client.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(timeout=30)
        self.client.close()
        return bytes(self.raw)


def events_of(messages, event_type, **match):
    return [m["data"] for m in messages
            if m.get("event") == event_type and all(m["data"].get(k) == v for k, v in match.items())]


def under_sanitizer(pid):
    """ASan keeps freed memory in quarantine on purpose: RSS means nothing there."""
    with open(f"/proc/{pid}/maps") as f:
        return any(lib in f.read() for lib in ("libasan", "libtsan", "libmsan"))


def proc_status_bytes(pid, field):
    """A memory line of /proc/PID/status (VmRSS, VmHWM: lpd's peak), in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


def vm_rss_bytes(pid):
    return proc_status_bytes(pid, "VmRSS")


SECRET_TESTS = """
import os, signal
from lpd_pytest import checkpoint

def test_fails():
    print("{secret}-output")
    assert False, "{secret}-message"

def test_pauses():
    assert checkpoint(task="{secret}-task", timeout=120).result is True

def {secret}_dies():
    os.kill(os.getpid(), signal.SIGSEGV)

def test_crashes():
    {secret}_dies()
"""


def test_another_users_content_is_never_served_only_its_metadata(users, root_lpd, tools):
    """Issue 11: proc.logs served A's helper log to B, and run output, argv,
    environments and tracebacks were anyone's through the operations. A
    plants one recognisable string in its helper's argv, environment and
    log, its run's argv, environment and output, a failing test's message, a
    checkpoint's task and a crash's traceback; B tries everything."""
    a, b, admin = users["a"], users["b"], users["admin"]
    secret = "s3cr3t_" + os.urandom(6).hex()
    b_saw = []  # every reply and every lpctl output B got

    def b_call(client, op, **fields):
        reply = client.request(op, **fields)
        b_saw.append(json.dumps(reply))
        return reply

    def b_lpctl(*args):
        result = as_user(b, root_lpd, tools, *args)
        b_saw.extend([result.stdout, result.stderr])
        return result

    def assert_denied(reply, what):
        assert reply["ok"] is False and reply["error"]["code"] == "permission_denied", reply
        assert f"{what} belongs to uid {a.pw_uid}" in reply["error"]["message"], reply

    # B, and an admin-group member, listen to every event from before A starts.
    b_live_client = user_client(b, root_lpd)
    assert b_live_client.request("events.subscribe")["ok"]
    b_live = Recorder(b_live_client)
    admin_live_client = user_client(admin, root_lpd)
    assert admin_live_client.request("events.subscribe")["ok"]
    admin_live = Recorder(admin_live_client)
    pauses = EventWaiter(root_lpd, types=["pause.created"])
    work = user_workdir(a)
    try:
        as_user(a, root_lpd, tools, "ensure", "sechelper", "--pattern", "ready", "--env", f"LPD_TEST_TOKEN={secret}",
                "--", "sh", "-c", f"echo {secret}-log; echo ready; exec sleep 600", check=True)
        write_tests(work, "test_sec.py", SECRET_TESTS.format(secret=secret))
        os.chown(os.path.join(work, "test_sec.py"), a.pw_uid, a.pw_gid)
        run = subprocess.Popen(
            [tools["lpctl"], "run", f"--env=LPD_TEST_TOKEN={secret}", "--name", "sec", "--", PYTHON, "-m", "pytest",
             "-p", "no:cacheprovider", "-q", "-s", "-k", f"not {secret}", "test_sec.py"],
            user=a.pw_uid, group=a.pw_gid, extra_groups=groups_of(a), cwd=work, env=user_env(a, root_lpd),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            pause = pauses.wait("pause.created", timeout=120)
        except TimeoutError:
            run.kill()
            raise AssertionError("A's test never paused: " + run.communicate()[0])
        run_id, pause_id = pause["run_id"], pause["pause_id"]

        # While A's test is paused: B lists everything, reads nothing.
        b_client = user_client(b, root_lpd)
        runs = {r["run_id"]: r for r in b_call(b_client, "run.list", all=True)["result"]["runs"]}
        assert runs[run_id]["owner_uid"] == a.pw_uid and runs[run_id]["status"] == "active"
        assert runs[run_id]["redacted"] is True and "argv" not in runs[run_id]
        listed = {p["pause_id"]: p for p in b_call(b_client, "pause.list", all=True)["result"]["pauses"]}
        assert listed[pause_id]["nodeid"] == "test_sec.py::test_pauses" and listed[pause_id]["status"] == "pending"
        assert "task" not in listed[pause_id]
        watched = b_call(b_client, "pause.watch", run_id=run_id, timeout=30)
        assert watched["result"]["pause"]["pause_id"] == pause_id and "task" not in watched["result"]["pause"]
        procs = {p["name"]: p for p in b_call(b_client, "proc.list")["result"]["processes"]}
        assert procs["sechelper"]["owner"] == a.pw_uid and procs["sechelper"]["state"] == "ready"
        assert "argv" not in procs["sechelper"]
        failed = [e for e in b_call(b_client, "events.list", run_id=run_id)["result"]["events"]
                  if e["event"] == "test.finish" and e["data"]["nodeid"] == "test_sec.py::test_fails"]
        assert failed and failed[0]["data"]["outcome"] == "failed" and "message" not in failed[0]["data"]
        for op in ("run.attach", "run.info", "run.report"):
            assert_denied(b_call(b_client, op, run_id=run_id), f"run {run_id}")
        for op in ("proc.info", "proc.logs"):
            assert_denied(b_call(b_client, op, name="sechelper"), "process sechelper")
        assert_denied(b_call(b_client, "pause.resume", pause_id=pause_id, result=True), f"pause {pause_id}")
        for args in (["runs", "-a"], ["ls", "-a"], ["ps", "-a"], ["events"], ["--json", "events"],
                     ["--json", "runs", "-a"], ["--json", "ps", "-a"]):
            assert b_lpctl(*args).returncode == 0
        for args in (["logs", "sechelper"], ["report", run_id, "--junit", "/tmp/x.xml"]):
            denied = b_lpctl(*args)
            assert denied.returncode == 1 and "permission_denied" in denied.stderr

        as_user(a, root_lpd, tools, "resume", pause_id, "--result", "true", check=True)
        out, _ = run.communicate(timeout=180)
        assert run.returncode != 0 and f"{secret}-output" in out  # A's own output has it: the string is real

        # After the run: its crash and its whole history, from B's side.
        crashes = b_call(b_client, "crash.list", run_id=run_id)["result"]["crashes"]
        assert [c["nodeid"] for c in crashes] == ["test_sec.py::test_crashes"]
        assert crashes[0]["signal_name"] == "SIGSEGV" and crashes[0]["owner_uid"] == a.pw_uid
        assert "traceback" not in crashes[0] and "reason" not in crashes[0]
        for op in ("run.attach", "run.info", "run.report"):
            assert_denied(b_call(b_client, op, run_id=run_id), f"run {run_id}")
        assert b_lpctl("crashes").returncode == 0 and b_lpctl("--json", "crashes").returncode == 0
        replay_client = user_client(b, root_lpd)
        last_seq = replay_client.request("events.subscribe", replay=True)["result"]["last_seq"]
        replay = Recorder(replay_client)
        replay.wait_for(lambda ms: any(m.get("data", {}).get("seq") == last_seq for m in ms))
        b_saw.append(replay.close().decode(errors="replace"))
        b_client.close()

        # B's live stream saw A's objects come and go, as metadata.
        b_live.wait_for(lambda ms: events_of(ms, "crash", run_id=run_id))
        assert events_of(b_live.messages, "process.ready", name="sechelper")[0]["owner"] == a.pw_uid
        assert events_of(b_live.messages, "run.started", run_id=run_id)[0]["owner_uid"] == a.pw_uid
        assert events_of(b_live.messages, "pause.created", pause_id=pause_id)
        assert events_of(b_live.messages, "test.finish", nodeid="test_sec.py::test_fails")[0]["outcome"] == "failed"
        assert events_of(b_live.messages, "crash", run_id=run_id)[0]["nodeid"] == "test_sec.py::test_crashes"
        b_saw.append(b_live.close().decode(errors="replace"))

        leaked = [text for text in b_saw if secret in text]
        assert not leaked, leaked[0][:2000]

        # The owner, an admin-group member and root get the content.
        def content_for(user_or_root):
            client = root_lpd.client() if user_or_root is None else user_client(user_or_root, root_lpd)
            try:
                got = [client.request("run.info", run_id=run_id), client.request("run.report", run_id=run_id),
                       client.request("crash.list", run_id=run_id), client.request("proc.info", name="sechelper"),
                       client.request("events.list", run_id=run_id)]
                assert all(r["ok"] for r in got), got
                logs = client.request("proc.logs", name="sechelper")
                assert logs["ok"], logs
                while True:
                    msg = client.read_message()
                    got.append(msg)
                    if msg.get("event") == "proc.log_end":
                        break
                return json.dumps(got)
            finally:
                client.close()

        for who in (a, admin, None):
            text = content_for(who)
            for piece in (f"{secret}-log", f"{secret}-message", f"{secret}_dies", f"not {secret}"):
                assert piece in text, (who, piece)
        admin_live.wait_for(lambda ms: events_of(ms, "crash", run_id=run_id))
        assert secret in admin_live.close().decode(errors="replace")
    finally:
        pauses.close()
        root_lpd.lpctl("kill", "sechelper", check=False)
        shutil.rmtree(work, ignore_errors=True)


def publish_test_events(feeder, count):
    """`count` test.start events from one registered connection, then a
    ping: its answer means lpd has published them all."""
    line = json.dumps({"op": "test.start", "nodeid": "tests/test_flood.py::test_" + "x" * 40}) + "\n"
    feeder.send_raw(line * count)
    assert feeder.request("ping")["ok"]


def drain_and_close(client):
    """Says goodbye (EOF), takes everything lpd still sends, and waits for lpd
    to close its end: then lpd has let go of everything of this connection."""
    try:
        client.sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    got = client.buf
    client.sock.settimeout(120)
    while True:
        chunk = client.sock.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    client.close()
    return got


def test_subscription_floods_are_refused_and_lpd_gives_the_memory_back(users, root_lpd):
    """Issue 11: 40 subscriptions of 100,000+ types grew lpd by 140-280 MB that
    never came back, and a client that never reads could make it queue 64 MiB."""
    b = users["b"]
    feeder = root_lpd.client()
    assert feeder.request("run.register", argv=["flood"])["ok"]
    # The event history is full before the first measure: what stays after
    # the flood is then the flood's own.
    publish_test_events(feeder, 10_500)
    rss_before = vm_rss_bytes(root_lpd.pid)
    pinger = Pinger(root_lpd)
    floods = []
    try:
        # Huge type lists: refused whole, nothing kept.
        huge = [f"t{i}." for i in range(60_000)]
        for _ in range(40):
            client = user_client(b, root_lpd)
            reply = client.request("events.subscribe", types=huge)
            assert reply["error"]["code"] == "limit_exceeded", reply
            floods.append(client)
        # The most a connection may hold: 16 subscriptions of 64 types of 128 bytes.
        widest = [f"p{i:03d}".ljust(128, "x") for i in range(64)]
        for client in floods[:10]:
            for _ in range(16):
                assert client.request("events.subscribe", types=widest)["ok"]
            assert client.request("events.subscribe", types=["pause."])["error"]["code"] == "limit_exceeded"
        assert floods[10].request("events.subscribe", types=["x" * 129])["error"]["code"] == "limit_exceeded"
        assert floods[10].request("events.list", types=huge[:65])["error"]["code"] == "limit_exceeded"
        # Clients that never read: everything replayed to them, then the
        # whole history asked for again and again, while events pour in.
        silent = []
        for _ in range(4):
            client = user_client(b, root_lpd)
            client.send_raw(json.dumps({"id": 1, "op": "events.subscribe", "replay": True}) + "\n" +
                            "".join(json.dumps({"id": n, "op": "events.list"}) + "\n" for n in range(2, 8)))
            silent.append(client)
        publish_test_events(feeder, 20_000)
        last_seq = feeder.request("events.subscribe", types=["none."])["result"]["last_seq"]

        # A silent client was paced, not dropped, and lost nothing it was owed:
        # its subscription's events arrive in order, and every reply comes.
        got = drain_and_close(silent.pop())
        messages = [json.loads(line) for line in got.splitlines()]
        seqs = [m["data"]["seq"] for m in messages if m.get("event") == "test.start"]
        assert seqs == sorted(set(seqs)) and seqs[-1] == last_seq
        assert sorted(m["id"] for m in messages if "id" in m) == list(range(1, 8))
        for client in silent:
            drain_and_close(client)
        for client in floods:
            drain_and_close(client)
    finally:
        count, _ = pinger.stop()  # asserts every ping was answered
    assert count > 0
    feeder.close()
    grown = vm_rss_bytes(root_lpd.pid) - rss_before
    if not under_sanitizer(root_lpd.pid):
        assert grown < 32 * 1024 * 1024, f"lpd kept {grown / 1e6:.1f} MB after the flooding connections closed"


def read_stream(client, until_event, data_key):
    """Reads pushes in small bites until `until_event`; returns (bytes of
    data_key's text, the final push's data)."""
    total = 0
    while True:
        msg = client.read_message(timeout=120)
        assert msg is not None, "lpd closed the connection mid-stream"
        if msg.get("event") == until_event:
            return total, msg["data"]
        if "event" in msg:
            total += len(msg["data"].get(data_key, ""))


def test_a_slow_reader_gets_a_long_log_and_output_whole(users, root_lpd, tools):
    """lpd queues at most a few MiB for a connection, so the streams it
    produces itself wait for their reader instead of dropping it: a 25 MB
    helper log and 25 MB of run output reach a reader that takes them in
    small bites."""
    a = users["a"]
    size = 250_000 * 100  # lines of 99 x's
    fill = f"yes {'x' * 99} | head -c {size}"
    as_user(a, root_lpd, tools, "ensure", "biglog", "--pattern", "^ready$", "--timeout", "120", "--",
            "sh", "-c", f"{fill}; echo ready; exec sleep 600", check=True)
    started = as_user(a, root_lpd, tools, "--json", "run", "--detach", "--", "sh", "-c", fill, check=True)
    run_id = json.loads(started.stdout)["run_id"]
    try:
        client = user_client(a, root_lpd)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        assert client.request("proc.logs", name="biglog")["ok"]
        got, end = read_stream(client, "proc.log_end", "data")
        assert got == size + len("ready\n") and end["name"] == "biglog"
        assert client.request("run.attach", run_id=run_id)["ok"]
        got, done = read_stream(client, "run.done", "data")
        assert got == size and done["returncode"] == 0
        client.close()
    finally:
        root_lpd.lpctl("kill", "biglog", check=False)


# -- end access -----------------------------------------------------------------


# -- planted links, FIFOs and devices; secrets on disk; identity (state) ------

def run_as_user(user, fn):
    """Calls fn() in a child that has become `user` (uid, gid, groups) and
    returns what it returned (JSON-able): the attacker's own view."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            os.setgroups(groups_of(user))
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            with os.fdopen(write_fd, "w") as out:
                json.dump(fn(), out)
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return json.loads(text)


def readable_contents(root):
    """Every file under `root` this process can open and read: {path: text}.
    Never blocks on a FIFO or follows a link out of the tree."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                found[path] = f.read(1 << 20).decode(errors="replace")
    return found


def wait_run_done(lpd, run_id, timeout=120):
    """The run's job (run.info) once it is done: waits for run.done on an
    attached stream, as lpctl does."""
    client = lpd.client()
    try:
        reply = client.request("run.attach", run_id=run_id)
        assert reply["ok"], reply
        while True:
            msg = client.read_message(timeout=timeout)
            assert msg is not None, "lpd closed the stream before run.done"
            if msg.get("event") == "run.done":
                break
        info = client.request("run.info", run_id=run_id)
        assert info["ok"], info
        return info["result"]
    finally:
        client.close()


def test_a_command_cannot_plant_links_or_fifos_where_lpd_reads_its_run(root_lpd, users, tools):
    """Issue 11: a FIFO at io/exit.json blocked all of lpd; a link at
    io/output.log served /etc/shadow. A run's records now live in a directory
    of lpd's: the run's own command, as its user, cannot put anything there."""
    a = users["a"]
    work = user_workdir(a)
    write_tests(work, "plant.py", f"""
import os, sys
run_dir = os.path.join({root_lpd.state_dir!r}, "runs", os.environ["LPD_RUN_ID"])
attempts = [
    ("fifo exit.json", lambda: os.mkfifo(os.path.join(run_dir, "exit.json"))),
    ("link exit.json.new", lambda: os.symlink("/etc/shadow", os.path.join(run_dir, "exit.json.new"))),
    ("replace output.log", lambda: os.unlink(os.path.join(run_dir, "output.log"))),
    ("link output.log", lambda: os.symlink("/etc/shadow", os.path.join(run_dir, "output.log.x"))),
    ("fifo in runs/", lambda: os.mkfifo(os.path.join(run_dir, "..", "planted"))),
    # Where an older lpd let the run's user write (runs/<id>/io/, theirs):
    ("fifo io/exit.json", lambda: os.mkfifo(os.path.join(run_dir, "io", "exit.json"))),
    ("link io/output.log", lambda: os.symlink("/etc/shadow", os.path.join(run_dir, "io", "output.log.x"))),
]
for what, attempt in attempts:
    try:
        attempt()
        print("PLANTED", what)
    except OSError as e:
        print("REFUSED", what, e.errno)
sys.exit(3)
""")
    os.chown(os.path.join(work, "plant.py"), a.pw_uid, a.pw_gid)
    pinger = Pinger(root_lpd)
    result = as_user(a, root_lpd, tools, "run", "--", PYTHON, "plant.py", cwd=work)
    count, worst = pinger.stop()
    print(f"pings answered during the attack: {count}, worst {worst * 1000:.1f} ms")
    assert "PLANTED" not in result.stdout, result.stdout
    assert result.stdout.count("REFUSED") == 7, result.stdout
    assert result.returncode == 3, result.stdout + result.stderr  # the real exit status, read from lpd's own file
    run_id = json.loads(as_user(a, root_lpd, tools, "--json", "runs", "-a", check=True).stdout)[-1]["run_id"]
    run_dir = os.path.join(root_lpd.state_dir, "runs", run_id)
    st = os.lstat(run_dir)
    assert st.st_uid == 0 and st.st_mode & 0o022 == 0
    log = os.lstat(os.path.join(run_dir, "output.log"))
    assert log.st_uid == a.pw_uid and (log.st_mode & 0o777) == 0o600
    assert not os.path.exists(os.path.join(run_dir, "io"))
    shutil.rmtree(work, ignore_errors=True)


def test_report_paths_that_are_fifos_links_or_devices_are_refused_without_blocking(root_lpd, users, tools):
    """--junit and --crash-log are the user's paths: lpd writes them as the
    user, never opens a FIFO or device there, and never writes through a
    link as root. Each refusal is a clear error; lpd keeps answering."""
    a, b = users["a"], users["b"]
    work = user_workdir(a)
    os.chmod(work, 0o755)
    b_secret = os.path.join(user_workdir(b), "secret")
    with open(b_secret, "w") as f:
        f.write("B-PRIVATE")
    os.chown(b_secret, b.pw_uid, b.pw_gid)
    os.chmod(b_secret, 0o600)

    def plant():
        os.mkfifo(os.path.join(work, "fifo"))
        os.symlink("/etc/shadow", os.path.join(work, "shadow"))
        os.symlink("/dev/zero", os.path.join(work, "zero"))
        os.symlink(b_secret, os.path.join(work, "b-secret"))
        return True
    assert run_as_user(a, plant)
    pinger = Pinger(root_lpd)
    refusals = {
        ("--junit", "fifo"): "not a regular file",
        ("--crash-log", "fifo"): "not a regular file",
        ("--crash-log", "shadow"): "is a symbolic link",
        ("--crash-log", "zero"): "is a symbolic link",
        ("--crash-log", "b-secret"): "is a symbolic link",
    }
    for (option, name), reason in refusals.items():
        result = as_user(a, root_lpd, tools, "run", "--detach", option, os.path.join(work, name), "--", "true",
                         cwd=work)
        assert result.returncode == 1, (option, name, result.stdout, result.stderr)
        assert reason in result.stderr and os.path.join(work, name) in result.stderr, result.stderr
    count, worst = pinger.stop()
    print(f"pings answered during the attack: {count}, worst {worst * 1000:.1f} ms")
    with open(b_secret) as f:
        assert f.read() == "B-PRIVATE"
    assert oct(os.stat("/etc/shadow").st_mode & 0o777) in ("0o640", "0o600", "0o000")
    assert json.loads(as_user(a, root_lpd, tools, "--json", "runs", "-a", check=True).stdout) == []
    shutil.rmtree(work, ignore_errors=True)


def test_a_junit_link_is_replaced_not_written_through(root_lpd, users, tools):
    """A link at the --junit path is replaced by the report (rename), as the
    user: the file it pointed at, root's, is untouched."""
    a = users["a"]
    work = user_workdir(a)
    target = os.path.join(short_tempdir(), "root-owned.txt")
    with open(target, "w") as f:
        f.write("ROOT-ONLY")
    os.chmod(target, 0o644)
    run_as_user(a, lambda: os.symlink(target, os.path.join(work, "report.xml")) or True)
    started = as_user(a, root_lpd, tools, "--json", "run", "--detach", "--junit", os.path.join(work, "report.xml"),
                      "--", "true", cwd=work, check=True)
    job = wait_run_done(root_lpd, json.loads(started.stdout)["run_id"])
    assert job["report_errors"] == []
    with open(target) as f:
        assert f.read() == "ROOT-ONLY"
    report = os.lstat(os.path.join(work, "report.xml"))
    assert not os.path.islink(os.path.join(work, "report.xml")) and report.st_uid == a.pw_uid
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(os.path.dirname(target), ignore_errors=True)


def test_no_other_user_can_read_a_runs_secrets_from_the_state_tree(root_lpd, users, tools):
    """job.json stored the caller's whole environment 0644 in a 0755 tree.
    Now every record is 0600 and directories are 0711: B (and nobody) read
    no file holding A's secret, A reads its own output, root everything."""
    a, b = users["a"], users["b"]
    secret = "LPD-SECRET-" + os.urandom(8).hex()
    work = user_workdir(a)
    as_user(a, root_lpd, tools, "run", "--", "sh", "-c", 'echo "token is $CI_TOKEN"', "argv-" + secret, cwd=work,
            check=True, env=user_env(a, root_lpd, CI_TOKEN=secret))
    as_user(a, root_lpd, tools, "ensure", "srv-" + "x", "--pattern", "ready", "--", "sh", "-c",
            "echo ready " + secret + "; exec sleep 600", cwd=work, check=True,
            env=user_env(a, root_lpd, HELPER_TOKEN=secret))
    state = root_lpd.state_dir
    seen_by_root = readable_contents(state)
    assert any(secret in text for text in seen_by_root.values())  # it is there to be found
    for attacker in (b, pwd.getpwnam("nobody")):
        seen = run_as_user(attacker, lambda: readable_contents(state))
        leaks = [path for path, text in seen.items() if secret in text]
        assert leaks == [], (attacker.pw_name, leaks)
    # A may read its own run's output by path (directories are traversable).
    run_id = json.loads(as_user(a, root_lpd, tools, "--json", "runs", "-a", check=True).stdout)[-1]["run_id"]
    own = run_as_user(a, lambda: open(os.path.join(state, "runs", run_id, "output.log")).read())
    assert "token is " + secret in own
    assert oct(os.stat(state).st_mode & 0o777) == "0o711"
    job = os.stat(os.path.join(state, "runs", run_id, "job.json"))
    assert job.st_uid == 0 and (job.st_mode & 0o777) == 0o600
    root_lpd.lpctl("kill", "srv-x")
    shutil.rmtree(work, ignore_errors=True)


def test_report_files_are_written_with_the_users_supplementary_groups(root_lpd, users, tools):
    """A detached --junit/--crash-log in a directory A may write only through
    a supplementary group: written, owned by A (fsuid alone failed here)."""
    a = users["a"]
    shared = short_tempdir()
    os.chown(shared, 0, grp.getgrnam(GROUP).gr_gid)
    os.chmod(shared, 0o770)
    work = user_workdir(a)
    os.chmod(work, 0o755)
    write_tests(work, "test_crash.py", "import os, signal\n"
                                       "def test_ok():\n    pass\n"
                                       "def test_crash():\n    os.kill(os.getpid(), signal.SIGSEGV)\n")
    junit, crash_log = os.path.join(shared, "report.xml"), os.path.join(shared, "crashes.jsonl")
    started = as_user(a, root_lpd, tools, "--json", "run", "--detach", "--junit", junit, "--crash-log", crash_log,
                      "--", PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_crash.py", cwd=work,
                      check=True)
    job = wait_run_done(root_lpd, json.loads(started.stdout)["run_id"])
    assert job["report_errors"] == [], job
    assert os.stat(junit).st_uid == a.pw_uid and os.stat(crash_log).st_uid == a.pw_uid
    with open(crash_log) as f:
        crashes = [json.loads(line) for line in f]
    assert [c["nodeid"] for c in crashes] == ["test_crash.py::test_crash"]
    with open(junit) as f:
        assert "test_crash" in f.read()
    shutil.rmtree(shared, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


def test_a_report_lpd_cannot_write_reaches_the_user(root_lpd, users, tools):
    """Refused at the start when the user may not write there; when the
    place goes away during the run, lpctl says so and exits non-zero even
    though the command passed."""
    a = users["a"]
    denied = as_user(a, root_lpd, tools, "run", "--detach", "--junit", "/root/report.xml", "--", "true")
    assert denied.returncode == 1
    assert "/root/report.xml" in denied.stderr and "Permission denied" in denied.stderr
    work = user_workdir(a)
    reports = os.path.join(work, "reports")
    run_as_user(a, lambda: os.mkdir(reports) or True)
    # The command removes the report's directory and passes.
    attached = as_user(a, root_lpd, tools, "run", "--junit", os.path.join(reports, "r.xml"), "--", "rmdir", reports,
                       cwd=work)
    assert attached.returncode == 1, attached.stdout + attached.stderr
    assert "JUnit report" in attached.stderr and "r.xml" in attached.stderr
    run_as_user(a, lambda: os.mkdir(reports) or True)
    detached = as_user(a, root_lpd, tools, "--json", "run", "--detach", "--junit", os.path.join(reports, "r.xml"),
                       "--", "rmdir", reports, cwd=work, check=True)
    job = wait_run_done(root_lpd, json.loads(detached.stdout)["run_id"])
    assert len(job["report_errors"]) == 1 and "r.xml" in job["report_errors"][0], job
    shutil.rmtree(work, ignore_errors=True)


def test_a_users_ld_preload_reaches_only_their_own_command_never_a_root_process(root_lpd, users, tools):
    """lpd-monitor runs as root; the caller's environment (LD_PRELOAD
    included) must reach only the command, after it became the caller."""
    if shutil.which("cc") is None:
        pytest.skip("needs a C compiler to build the preloaded library")
    a = users["a"]
    work = user_workdir(a)
    os.chmod(work, 0o755)
    source = os.path.join(work, "probe.c")
    with open(source, "w") as f:
        f.write('#include <stdio.h>\n#include <stdlib.h>\n#include <unistd.h>\n'
                '__attribute__((constructor)) static void probe(void) {\n'
                '  const char* out = getenv("PROBE_OUT"); if (!out) return;\n'
                '  FILE* f = fopen(out, "a"); if (!f) return;\n'
                '  fprintf(f, "%d\\n", (int)geteuid()); fclose(f);\n}\n')
    library = os.path.join(work, "probe.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", library, source], check=True)
    out = os.path.join(work, "euids")
    run_as_user(a, lambda: open(out, "w").close() or True)
    # Through --env, so it reaches lpd's side only (an ASan lpctl refuses to
    # start under LD_PRELOAD itself).
    result = as_user(a, root_lpd, tools, "run", "--env", "LD_PRELOAD=" + library, "--env", "PROBE_OUT=" + out,
                     "--", "true", cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    with open(out) as f:
        euids = [int(line) for line in f if line.strip()]
    # The command loaded it, as A; nothing as root (the monitor never saw it).
    assert euids and set(euids) == {a.pw_uid}, euids
    shutil.rmtree(work, ignore_errors=True)


def test_one_user_cannot_take_every_connection(root_lpd, users, tools):
    """Idle connections cost lpd a descriptor and a read buffer each: one
    user may hold a bounded number (1024); past it a new one is told
    limit_exceeded, and other users connect as before."""
    import resource
    b, a = users["b"], users["a"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 1200:
        pytest.skip("the descriptor limit is too low to hold 1025 connections")
    report_r, report_w = os.pipe()
    release_r, release_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            os.setgroups(groups_of(b))
            os.setgid(b.pw_gid)
            os.setuid(b.pw_uid)
            held = []
            for _ in range(1024):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(root_lpd.socket)
                held.append(s)
            extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            extra.settimeout(60)
            extra.connect(root_lpd.socket)
            extra.sendall(b'{"id":1,"op":"hello","protocol":1}\n')
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = extra.recv(4096)
                if not chunk:
                    break
                answer += chunk
            os.write(report_w, answer or b"(nothing)\n")
            os.read(release_r, 1)
        finally:
            os._exit(0)
    os.close(report_w)
    with os.fdopen(report_r, "rb") as f:
        answer = json.loads(f.readline())
    try:
        assert answer["ok"] is False and answer["error"]["code"] == "limit_exceeded", answer
        assert "1024 connections" in answer["error"]["message"]
        assert as_user(a, root_lpd, tools, "ping", "-c", "1").returncode == 0
        assert root_lpd.ping()
    finally:
        os.write(release_w, b"x")
        os.waitpid(pid, 0)


def test_one_user_cannot_park_memory_in_lines_without_a_newline(root_lpd, users, tools):
    """Stop 34's attack: 500 connections of one user, each holding 1,000,000
    bytes of a line without its newline, took lpd to 502 MB. A user's
    unended lines may hold 32 MiB over all their connections: 33 lines of
    1,000,027 bytes fit, a 34th does not, so of 150 connections exactly 33
    are kept (whatever order lpd read them in) and 117 are told
    limit_exceeded and closed; lpd's peak stays near the 32 MiB."""
    b, a = users["b"], users["a"]
    head = b'{"id":9,"op":"ping","pad":"'
    body = b"x" * 1_000_000
    limit = 32 << 20
    assert 33 * (len(head) + len(body)) < limit < 34 * (len(head) + len(body))
    rss_before = vm_rss_bytes(root_lpd.pid)
    clients = [user_client(b, root_lpd) for _ in range(150)]
    try:
        for client in clients:
            try:
                client.sock.sendall(head + body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused while its line went in: its reply is read below
        # Each refused connection gets one line, then end of stream.
        refused, said = set(), {}
        deadline = time.monotonic() + 240  # a safety net only: each wait ends on an event
        waiting = {client.sock: client for client in clients}
        while len(refused) < 117:
            left = deadline - time.monotonic()
            assert left > 0, f"only {len(refused)} connections refused"
            ready, _, _ = select.select(list(waiting), [], [], left)
            for sock in ready:
                client = waiting[sock]
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                said[client] = said.get(client, b"") + chunk
                if not chunk:
                    refused.add(client)
                    del waiting[sock]
        for client in refused:
            reply = json.loads(said[client].split(b"\n")[0])
            assert reply["error"]["code"] == "limit_exceeded", reply
            assert "32 MiB of request lines not yet ended by a newline" in reply["error"]["message"], reply
        if not under_sanitizer(root_lpd.pid):  # ASan's quarantine keeps every freed line
            peak = proc_status_bytes(root_lpd.pid, "VmHWM")
            assert peak - rss_before < 80 << 20, (rss_before, peak)
        # Another user is served meanwhile, and so is b's next connection.
        assert as_user(a, root_lpd, tools, "ping", "-c", "1").returncode == 0
        assert user_client(b, root_lpd).request("ping")["ok"]
        # The 33 kept end their lines and are answered as usual.
        kept = [client for client in clients if client not in refused]
        assert len(kept) == 33
        for client in kept:
            assert not said.get(client), said.get(client)
            client.sock.sendall(b'"}\n')
            reply = client.read_message(timeout=60)
            assert reply["id"] == 9 and reply["ok"], reply
        assert "unfinished request lines" in root_lpd.log_text()
    finally:
        for client in clients:
            client.close()


def test_paths_the_user_cannot_see_are_checked_as_the_user_not_as_root(root_lpd, users, tools):
    """The command and working directory are resolved as the caller: a root
    lpd neither enters a directory for them nor tells them whether a file
    exists where they cannot look (an existing and a missing path in a
    root-only directory answer alike)."""
    a = users["a"]
    work = user_workdir(a)
    hidden = tempfile.mkdtemp(prefix="lpd-sh-root-", dir="/tmp")  # 0700 root
    os.mkdir(os.path.join(hidden, "exists"))
    with open(os.path.join(hidden, "tool"), "w") as f:
        f.write("#!/bin/sh\necho ran\n")
    os.chmod(os.path.join(hidden, "tool"), 0o755)
    run_as_user(a, lambda: os.symlink(hidden, os.path.join(work, "hidden")) or True)
    answers = {}
    for label, args in {
        "cwd link": ["--cwd", os.path.join(work, "hidden"), "--", "true"],
        "cwd exists": ["--cwd", os.path.join(hidden, "exists"), "--", "true"],
        "cwd missing": ["--cwd", os.path.join(hidden, "missing"), "--", "true"],
        "command exists": ["--", os.path.join(hidden, "tool")],
        "command missing": ["--", os.path.join(hidden, "nothing")],
    }.items():
        result = as_user(a, root_lpd, tools, "run", *args, cwd=work)
        assert result.returncode == 1 and "ran" not in result.stdout, (label, result.stdout, result.stderr)
        answers[label] = result.stderr.replace(hidden, "H").replace("exists", "X").replace("missing", "X") \
            .replace("tool", "Y").replace("nothing", "Y")
    for label, args in {
        "ensure cwd exists": ["--cwd", os.path.join(hidden, "exists"), "--", "true"],
        "ensure cwd missing": ["--cwd", os.path.join(hidden, "missing"), "--", "true"],
        "ensure command exists": ["--", os.path.join(hidden, "tool")],
        "ensure command missing": ["--", os.path.join(hidden, "nothing")],
    }.items():
        result = as_user(a, root_lpd, tools, "ensure", "probe", "--pattern", "never", "--timeout", "5", *args,
                         cwd=work)
        assert result.returncode == 1, (label, result.stdout, result.stderr)
        answers[label] = result.stderr.replace(hidden, "H").replace("exists", "X").replace("missing", "X") \
            .replace("tool", "Y").replace("nothing", "Y")
    assert answers["ensure cwd exists"] == answers["ensure cwd missing"], answers
    assert answers["ensure command exists"] == answers["ensure command missing"], answers
    assert answers["cwd exists"] == answers["cwd missing"], answers
    assert answers["command exists"] == answers["command missing"], answers
    assert "permission_denied" in answers["cwd link"] or "not_found" in answers["cwd link"], answers
    assert json.loads(as_user(a, root_lpd, tools, "--json", "runs", "-a", check=True).stdout) == []
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(hidden, ignore_errors=True)


# -- trust of paths and peers (hD) --
import stat  # noqa: E402 - this section's own imports, kept beside it



def start_user_lpd(user, tools, *args, env):
    """`lpd start --foreground` as `user`: returns (readiness line, Popen).
    The caller ends a daemon that became ready."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([tools["lpd"], "start", "--foreground", "--ready-fd", str(write_fd), *args],
                            pass_fds=[write_fd], user=user.pw_uid, group=user.pw_gid, extra_groups=groups_of(user),
                            cwd=user.pw_dir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        return f.read().strip(), proc


def end_user_lpd(proc):
    if proc.poll() is None:
        proc.terminate()
    proc.communicate(timeout=60)


def shared_group_dir():
    """A directory a and b may both write (root's, group lpdsh, not sticky),
    like a runners' shared reports directory."""
    shared = short_tempdir()
    os.chown(shared, 0, grp.getgrnam(GROUP).gr_gid)
    os.chmod(shared, 0o770)
    return shared


def victim_file(user, text):
    """A file of `user`'s that only they may write: what an attacker aims at."""
    path = os.path.join(user_workdir(user), "precious")
    os.chmod(os.path.dirname(path), 0o755)
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(path, 0o644)
    return path


@pytest.fixture
def lpd_tool(tools):
    """`tools` plus lpd itself, where the throwaway users may run it."""
    return dict(tools, lpd=staged_install()["lpd"])


class ForeignServer:
    """A socket `owner` listens on (listen() ran as them, so SO_PEERCRED
    names them), accepted here: records every byte a client sends it, then
    hangs up. What a user who got to a victim's socket path first sees."""

    def __init__(self, owner, path):
        def listen():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(path)
            os.chmod(path, 0o777)
            s.listen(8)
            return s
        self.listener = socket_made_by(owner, listen)
        self.listener.settimeout(0.2)
        self.received = []
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(10)
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if data:
                    self.received.append(data)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=30)
        self.listener.close()


def test_a_default_socket_directory_made_by_another_user_is_refused(users, lpd_tool):
    """Issue 11 review: with no XDG_RUNTIME_DIR a user's lpd uses
    /tmp/lpd-$UID. B made it first (0777) with lpd.sock.lock linked to A's
    file: A's `lpd start` truncated that file, and B could swap in a fake
    socket. lpd now refuses the directory, naming it, its owner and mode."""
    a, b = users["a"], users["b"]
    precious = victim_file(a, "A-DATA")
    hijacked = f"/tmp/lpd-{a.pw_uid}"
    shutil.rmtree(hijacked, ignore_errors=True)

    def plant():
        os.mkdir(hijacked)
        os.chmod(hijacked, 0o777)
        os.symlink(precious, os.path.join(hijacked, "lpd.sock.lock"))
        return True
    assert run_as_user(b, plant)
    env = {"PATH": "/usr/bin:/bin", "HOME": a.pw_dir, "USER": a.pw_name}  # no XDG_RUNTIME_DIR, no LPD_SOCKET
    try:
        ready, proc = start_user_lpd(a, lpd_tool, env=env)
        end_user_lpd(proc)
        assert ready.startswith("ERROR"), ready
        assert hijacked in ready and f"uid {b.pw_uid}" in ready and "0777" in ready, ready
        with open(precious) as f:
            assert f.read() == "A-DATA"
        assert not os.path.exists(os.path.join(hijacked, "lpd.sock"))
    finally:
        shutil.rmtree(hijacked, ignore_errors=True)
        shutil.rmtree(os.path.dirname(precious), ignore_errors=True)


def test_a_log_link_in_another_users_state_directory_is_never_written(users, lpd_tool):
    """Issue 16 attack (10): `lpd start --state-dir D` refused B's
    directory, but only after appending its first log lines to lpd.log
    there, which B had linked to A's file. The directory is judged first."""
    a, b = users["a"], users["b"]
    precious = victim_file(a, "A-DATA")
    state = os.path.join(user_workdir(b), "state")

    def plant():
        os.makedirs(state)
        os.symlink(precious, os.path.join(state, "lpd.log"))
        return True
    assert run_as_user(b, plant)
    os.chmod(os.path.dirname(state), 0o755)  # A may look in: B's directory, open to all (0755)
    os.chmod(state, 0o755)
    env = {"PATH": "/usr/bin:/bin", "HOME": a.pw_dir, "USER": a.pw_name}
    sock = os.path.join(user_workdir(a), "s.sock")
    try:
        # In the background, as a user starts it: lpd.log is where it logs.
        r = subprocess.run([lpd_tool["lpd"], "start", "--socket", sock, "--state-dir", state], user=a.pw_uid,
                           group=a.pw_gid, extra_groups=groups_of(a), cwd=a.pw_dir, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        assert r.returncode == 1, r
        assert state in r.stderr and f"uid {b.pw_uid}" in r.stderr, r.stderr
        with open(precious) as f:
            assert f.read() == "A-DATA"
    finally:
        shutil.rmtree(os.path.dirname(state), ignore_errors=True)
        shutil.rmtree(os.path.dirname(precious), ignore_errors=True)


def test_a_lock_file_link_planted_beside_an_explicit_socket_is_not_followed(users, lpd_tool):
    """An explicit --socket in a shared sticky directory (like /tmp) is
    allowed, but a link B planted at its lock file is never followed: lpd
    refuses to start and A's file is untouched. Without the link it starts."""
    a, b = users["a"], users["b"]
    precious = victim_file(a, "A-DATA")
    shared = short_tempdir()
    os.chmod(shared, 0o1777)
    sock = os.path.join(shared, "lpd.sock")
    state = os.path.join(user_workdir(a), "state")
    run_as_user(b, lambda: os.symlink(precious, sock + ".lock") or True)
    env = {"PATH": "/usr/bin:/bin", "HOME": a.pw_dir, "USER": a.pw_name}
    try:
        ready, proc = start_user_lpd(a, lpd_tool, "--socket", sock, "--state-dir", state, env=env)
        end_user_lpd(proc)
        assert ready.startswith("ERROR") and "symbolic link" in ready and sock + ".lock" in ready, ready
        with open(precious) as f:
            assert f.read() == "A-DATA"
        os.unlink(sock + ".lock")
        ready, proc = start_user_lpd(a, lpd_tool, "--socket", sock, "--state-dir", state, env=env)
        end_user_lpd(proc)
        assert ready.startswith("READY"), ready
    finally:
        shutil.rmtree(shared, ignore_errors=True)
        shutil.rmtree(os.path.dirname(state), ignore_errors=True)
        shutil.rmtree(os.path.dirname(precious), ignore_errors=True)


def test_clients_tell_nothing_to_a_socket_another_user_serves(users, tools):
    """B serves the socket path A's clients use. lpctl and the pytest shim
    read SO_PEERCRED and hang up before saying anything (hello carries the
    pid, run.start the whole environment): "no daemon", naming B's uid."""
    a, b = users["a"], users["b"]
    where = user_workdir(b)
    os.chmod(where, 0o755)
    path = os.path.join(where, "lpd.sock")
    server = ForeignServer(b, path)
    try:
        env = {"PATH": "/usr/bin:/bin", "HOME": a.pw_dir, "USER": a.pw_name, "LPD_SOCKET": path,
               "CI_TOKEN": "a-secret-token"}
        cli = subprocess.run([tools["lpctl"], "run", "--", "true"], user=a.pw_uid, group=a.pw_gid,
                             extra_groups=groups_of(a), cwd=a.pw_dir, env=env, capture_output=True, text=True,
                             timeout=60)
        assert cli.returncode == 2, cli.stdout + cli.stderr
        assert path in cli.stderr and f"uid {b.pw_uid}" in cli.stderr, cli.stderr
        probe = ("import warnings\n"
                 "from lpd_pytest.client import Connection, LpdUnavailable\n"
                 "try:\n    Connection()\n    print('CONNECTED')\n"
                 "except LpdUnavailable as e:\n    print('UNAVAILABLE', e)\n")
        shim = subprocess.run([PYTHON, "-c", probe], user=a.pw_uid, group=a.pw_gid, extra_groups=groups_of(a),
                              cwd=a.pw_dir, env=dict(env, PYTHONPATH=staged_install()["pythonpath"]), capture_output=True,
                              text=True, timeout=60)
        assert shim.stdout.startswith("UNAVAILABLE") and f"uid {b.pw_uid}" in shim.stdout, shim.stdout + shim.stderr
        assert "Warning" in shim.stderr and f"uid {b.pw_uid}" in shim.stderr, shim.stderr
    finally:
        server.stop()
        shutil.rmtree(where, ignore_errors=True)
    assert server.connections >= 2
    assert server.received == [], server.received


def test_an_attached_junit_temp_file_link_is_not_written_through(root_lpd, users, tools):
    """B plants `report.xml.lpctl-new` in a directory both may write, linked
    to A's file: lpctl used to truncate A's file and write the report into
    it. The temp is now created afresh (O_EXCL|O_NOFOLLOW)."""
    a, b = users["a"], users["b"]
    precious = victim_file(a, "A-DATA")
    shared = shared_group_dir()
    report = os.path.join(shared, "report.xml")
    run_as_user(b, lambda: os.symlink(precious, report + ".lpctl-new") or True)
    work = user_workdir(a)
    try:
        result = as_user(a, root_lpd, tools, "run", "--junit", report, "--", "true", cwd=work)
        with open(precious) as f:
            assert f.read() == "A-DATA"
        assert result.returncode == 0, result.stdout + result.stderr
        st = os.lstat(report)
        assert not os.path.islink(report) and st.st_uid == a.pw_uid
        assert not os.path.lexists(report + ".lpctl-new")
    finally:
        for d in (shared, work, os.path.dirname(precious)):
            shutil.rmtree(d, ignore_errors=True)


def test_an_attached_junit_path_that_cannot_be_written_is_refused_before_the_run(root_lpd, users, tools):
    """A --junit lpctl cannot write (a directory A may not write, a FIFO at
    the path) is refused at once with exit 1: the command never runs."""
    a, b = users["a"], users["b"]
    work = user_workdir(a)
    os.chmod(work, 0o755)
    theirs = user_workdir(b)
    os.chmod(theirs, 0o755)
    run_as_user(a, lambda: os.mkfifo(os.path.join(work, "fifo.xml")) or True)
    marker = os.path.join(work, "ran")
    try:
        for junit, reason in ((os.path.join(theirs, "r.xml"), "Permission denied"),
                              (os.path.join(work, "fifo.xml"), "not a regular file")):
            result = as_user(a, root_lpd, tools, "run", "--junit", junit, "--", "touch", marker, cwd=work)
            assert result.returncode == 1, (junit, result.stdout, result.stderr)
            assert junit in result.stderr and reason in result.stderr, result.stderr
            assert not os.path.exists(marker), "the run started"
        assert stat.S_ISFIFO(os.lstat(os.path.join(work, "fifo.xml")).st_mode)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(theirs, ignore_errors=True)


def test_a_crash_log_link_is_refused_not_appended_through(root_lpd, users, tools):
    """B links the agreed --crash-log path in a shared directory to A's
    file: A's run is refused ("is a symbolic link"), A's file untouched."""
    a, b = users["a"], users["b"]
    precious = victim_file(a, "A-DATA")
    shared = shared_group_dir()
    crash_log = os.path.join(shared, "crashes.jsonl")
    run_as_user(b, lambda: os.symlink(precious, crash_log) or True)
    work = user_workdir(a)
    try:
        result = as_user(a, root_lpd, tools, "run", "--detach", "--crash-log", crash_log, "--", "true", cwd=work)
        assert result.returncode == 1, result.stdout + result.stderr
        assert crash_log in result.stderr and "is a symbolic link" in result.stderr, result.stderr
        with open(precious) as f:
            assert f.read() == "A-DATA"
    finally:
        for d in (shared, work, os.path.dirname(precious)):
            shutil.rmtree(d, ignore_errors=True)


# -- end trust --


# -- end state --------------------------------------------------------------------


def test_workers_refused_by_the_connection_limit_still_report_what_ran(users, tools):
    """h13fix2 (issue 13): a user at lpd's per-user connection limit
    (--connections-per-user-max) gets lpd's reason from the shim, not "no lpd
    answering ... start one", and the tests its refused xdist workers ran
    reach the report through their controller: none reported as never run."""
    a = users["a"]
    d = Lpd(lpd_bin=staged_install()["lpd"])
    os.chmod(d.root, 0o755)
    # lpctl's connection and the controller's (its link and its traceback
    # connection) fit; every connection of the workers is refused.
    d.start("--socket-group", GROUP, "--connections-per-user-max", "3")
    work = user_workdir(a)
    try:
        write_tests(work, "test_many.py", "import pytest\n\n\n@pytest.mark.parametrize('i', range(12))\n"
                                          "def test_ok(i):\n    pass\n")
        junit = os.path.join(work, "report.xml")
        # --basetemp in the user's own directory: /tmp/pytest-of-USER may be
        # left by an earlier user of the same name (throwaway users come and go).
        result = as_user(a, d, tools, "--json", "run", "--junit", junit, "--", PYTHON, "-m", "pytest", "-q",
                         "-p", "no:cacheprovider", "-n", "2", "--basetemp", os.path.join(work, "tmp"),
                         "test_many.py", cwd=work, timeout=180)
        out = result.stdout + result.stderr
        assert "refused the connection" in out and "--connections-per-user-max" in out, out[-3000:]
        assert "start one with" not in out, out[-3000:]
        assert result.returncode == 0, out[-3000:]
        cases = list(ET.parse(junit).getroot().iter("testcase"))
        assert sorted(c.get("name") for c in cases) == sorted(f"test_ok[{i}]" for i in range(12)), \
            ET.tostring(ET.parse(junit).getroot()).decode()[-3000:]
        assert all(len(c) == 0 for c in cases), ET.tostring(ET.parse(junit).getroot()).decode()[-3000:]
    finally:
        d.stop()
        shutil.rmtree(d.root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
