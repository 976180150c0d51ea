"""Starts a real lpd on a private socket and state directory, and drives the
real lpctl and raw sockets against it. Waits are events (a readiness pipe,
socket reads, process exits), never sleeps."""

import contextlib
import ctypes
import grp
import json
import os
import pwd
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

LPD_BIN = os.environ.get("LPD_BIN", "lpd")
LPCTL_BIN = os.environ.get("LPCTL_BIN", "lpctl")
SOURCE_DIR = os.environ.get("LPD_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def build_is_sanitized(build_dir):
    """Whether the CMake build in `build_dir` is an ASan/UBSan one (its
    cache says LPD_SANITIZE=ON); False when it cannot tell."""
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            return re.search(r"^LPD_SANITIZE:BOOL=(ON|1|TRUE)$", f.read(), re.M | re.I) is not None
    except OSError:
        return False


@contextlib.contextmanager
def socket_activated_lpd(root):
    """lpd started by systemd-socket-activate on ROOT/activated.sock (skips
    the test when that tool is missing). Yields (process, socket path) once
    the socket queues connections; stops lpd with SIGTERM afterwards and
    asserts it exited 0."""
    if shutil.which("systemd-socket-activate") is None:
        pytest.skip("systemd-socket-activate is not installed")
    sock = os.path.join(root, "activated.sock")
    proc = subprocess.Popen(["systemd-socket-activate", "-l", sock, LPD_BIN, "start", "--foreground",
                             "--state-dir", os.path.join(root, "state")], stderr=subprocess.PIPE, text=True)
    try:
        assert "Listening on" in proc.stderr.readline()  # the socket exists and queues connections
        yield proc, sock
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0


def short_tempdir():
    """Unix socket paths are limited to 107 bytes; pytest's tmp_path can be longer."""
    return tempfile.mkdtemp(prefix="lpd-e2e-", dir="/tmp")


class RawClient:
    """A bare protocol peer: one JSON line out, one JSON line in."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def read_message(self, timeout=10.0):
        """Next message as a dict; None when the daemon closed the connection."""
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def request(self, op, **fields):
        msg_id = self.next_id
        self.next_id += 1
        self.send_raw(json.dumps(dict(fields, id=msg_id, op=op)) + "\n")
        while True:
            msg = self.read_message()
            assert msg is not None, f"connection closed while waiting for the reply to {op}"
            if "event" in msg:
                continue
            return msg

    def hello(self, **fields):
        reply = self.request("hello", role=fields.pop("role", "test"), protocol=1, **fields)
        assert reply["ok"], reply
        return reply["result"]

    def closed_by_peer(self, timeout=10.0):
        """True once the daemon closed its end (after draining what it sent)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


class Lpd:
    """One lpd under test, with its own socket, state directory and log."""

    # h14fixC: every Lpd started in this test process since the last
    # kill_started_helpers(): conftest's autouse fixture kills their helpers
    # after each test (helpers outlive lpd on purpose, so stop() does not).
    started = []

    def __init__(self, root=None, lpd_bin=None):
        self.lpd_bin = lpd_bin or LPD_BIN  # h18try: staged_install()["lpd"] for tests run by other users
        self.root = root or short_tempdir()
        self.socket = os.path.join(self.root, "lpd.sock")
        self.state_dir = os.path.join(self.root, "state")
        self.log_path = os.path.join(self.root, "lpd-stderr.log")
        self.proc = None
        self.pid = None
        self.pids = []  # h14fixC: each lpd process this object started (its helpers' cgroups are named by it)
        self.helpers_seen = {}  # h14fixC: pid -> start_time of helpers running when stop() began

    # -- lifecycle -------------------------------------------------------
    def start(self, *extra, env=None, rlimit_nofile=None):
        """`rlimit_nofile`: lpd's descriptor limit (soft and hard, so lpd
        cannot raise it), to put it under descriptor pressure."""
        read_fd, write_fd = os.pipe()
        log = open(self.log_path, "ab")
        preexec = None
        if rlimit_nofile is not None:
            def preexec():
                resource.setrlimit(resource.RLIMIT_NOFILE, (rlimit_nofile, rlimit_nofile))
        self.proc = subprocess.Popen(
            [self.lpd_bin, "start", "--foreground", "--socket", self.socket, "--state-dir", self.state_dir,
             "--log-level", "debug", "--ready-fd", str(write_fd), *extra],
            pass_fds=[write_fd], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            env=env if env is not None else self.env(), preexec_fn=preexec)
        os.close(write_fd)
        log.close()
        report = self._read_all(read_fd)
        assert report.startswith("READY "), f"lpd did not become ready: {report!r}\n{self.log_text()}"
        self.pid = int(report.split()[1])
        assert self.pid == self.proc.pid
        self.pids.append(self.pid)  # h14fixC
        # h14fixC: without cgroups of its own (see kill_helpers) lpd is asked
        # for its helpers when stopped; with them, stop() adds no request.
        start_env = env if env is not None else self.env()
        self.without_cgroups = (start_env.get("LPD_CGROUPS") == "off" or os.geteuid() != 0
                                or supervision_cgroup_dir() is None)
        if self not in Lpd.started:
            Lpd.started.append(self)
        # Readiness means the socket accepts: prove it with a real connection.
        client = RawClient(self.socket)
        client.hello()
        client.close()
        return self

    @staticmethod
    def _read_all(fd):
        chunks = []
        while True:
            data = os.read(fd, 4096)
            if not data:
                break
            chunks.append(data)
        os.close(fd)
        return b"".join(chunks).decode().strip()

    def stop(self, sig=signal.SIGTERM):
        """Stops lpd and asserts it exited cleanly (0) with no sanitizer report."""
        if self.proc is None:
            return
        if getattr(self, "without_cgroups", False):
            self._note_helpers()  # h14fixC
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        self.proc = None
        self.assert_no_sanitizer_errors()
        assert code == 0, f"lpd exited with {code}\n{self.log_text()}"

    # -- h14fixC: no helper outlives the test that started it ----------------
    def kill_helpers(self):
        """Kills every helper of this lpd, whoever owns it and whoever holds
        it: through lpd while it runs (proc.kill, force), then every
        process left in the cgroups lpd made for its helpers (named
        t<lpd pid>-<n> under lpd.supervised; a test may have stopped or
        killed lpd itself), and removes those cgroups. Waits for the
        processes to be gone (pidfds, cgroup.events); never raises."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                client = RawClient(self.socket, timeout=60)
                try:
                    client.hello()
                    reply = client.request("proc.list")
                    for record in (reply.get("result") or {}).get("processes", []):
                        fields = {"full_name": record.get("full_name") or record["name"],
                                  "owner": record["owner"], "force": True, "grace": 5}
                        client.request("proc.kill", **fields)
                finally:
                    client.close()
            except (OSError, ValueError, KeyError, AssertionError):
                pass  # lpd cannot say: the cgroups below still can
        for directory in self._helper_cgroups():
            kill_cgroup(directory)
        # Where lpd made no cgroups (LPD_CGROUPS=off, an lpd that is not
        # root): the helpers lpd listed when it was last stopped, each its
        # own session leader, if that very process (start time) still runs.
        seen, self.helpers_seen = self.helpers_seen, {}
        left = []
        for pid, start_time in seen.items():
            if proc_start_time(pid) == start_time:
                try:
                    os.killpg(pid, signal.SIGKILL)
                    left.append(pid)
                except OSError:
                    pass
        wait_all_gone(left)

    def _note_helpers(self):
        """Remembers the helpers lpd runs now (proc.list), for kill_helpers()
        after lpd is gone. Never raises."""
        try:
            client = RawClient(self.socket, timeout=10)
            try:
                client.hello()
                reply = client.request("proc.list")
            finally:
                client.close()
            for record in (reply.get("result") or {}).get("processes", []):
                if isinstance(record.get("pid"), int) and record["pid"] > 0:
                    self.helpers_seen[record["pid"]] = record.get("start_time")
        except (OSError, ValueError, KeyError, AssertionError):
            pass

    def _helper_cgroups(self):
        base = supervision_cgroup_dir()
        if base is None or not self.pids:
            return []
        prefixes = tuple(f"t{pid}-" for pid in self.pids)
        try:
            names = os.listdir(base)
        except OSError:
            return []
        return [os.path.join(base, n) for n in names if n.startswith(prefixes)]

    @classmethod
    def kill_started_helpers(cls):
        """kill_helpers() of every Lpd started since the last call."""
        started, cls.started = cls.started, []
        for daemon in started:
            daemon.kill_helpers()

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=60)
        self.proc = None

    def env(self, **extra):
        env = dict(os.environ)
        env["LPD_SOCKET"] = self.socket
        env.update(extra)
        return env

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def assert_no_sanitizer_errors(self):
        text = self.log_text()
        for marker in SANITIZER_MARKERS:
            assert marker not in text, f"sanitizer report in lpd's log:\n{text}"

    # -- clients ---------------------------------------------------------
    def lpctl(self, *args, check=True, timeout=60, input=None, env=None):
        result = subprocess.run([LPCTL_BIN, "--socket", self.socket, *args], capture_output=True, text=True,
                                timeout=timeout, input=input, env=env if env is not None else self.env())
        if check:
            assert result.returncode == 0, (
                f"lpctl {' '.join(args)} exited {result.returncode}\nstdout: {result.stdout}\n"
                f"stderr: {result.stderr}")
        return result

    def lpctl_json(self, *args, **kwargs):
        result = self.lpctl("--json", *args, **kwargs)
        return json.loads(result.stdout)

    def client(self, hello=True):
        c = RawClient(self.socket)
        if hello:
            c.hello()
        return c

    def run_info(self, run_id):
        """run.info's result for `run_id`, asserted ok, over a connection of its own."""
        c = self.client()
        try:
            reply = c.request("run.info", run_id=run_id)
        finally:
            c.close()
        assert reply["ok"], reply
        return reply["result"]

    def ping(self):
        c = self.client()
        reply = c.request("ping")
        c.close()
        assert reply["ok"] and reply["result"] == {"pong": True}, reply
        return True


def supervision_cgroup_dir():
    """h14fixC: <cgroup2 mount><this process's cgroup>/lpd.supervised, where
    an lpd started from here makes its helpers' cgroups; None without one."""
    mount = None
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                dash = fields.index("-")
                if fields[dash + 1] == "cgroup2":
                    mount = fields[4]
                    break
        with open("/proc/self/cgroup") as f:
            own = next((line.strip()[3:] for line in f if line.startswith("0::")), None)
    except (OSError, ValueError, IndexError):
        return None
    if mount is None or own is None:
        return None
    directory = mount + ("" if own == "/" else own) + "/lpd.supervised"
    return directory if os.path.isdir(directory) else None


def kill_cgroup(directory, timeout=30):
    """h14fixC: SIGKILL to every process of a helper's cgroup (cgroup.kill),
    waits (inotify on cgroup.events) until it is empty, then removes it
    (lpd removes it itself when it sees the helper end: ENOENT is fine).
    Returns True once the cgroup is empty or gone; never raises."""
    def populated():
        try:
            with open(os.path.join(directory, "cgroup.events")) as f:
                return "populated 1" in f.read()
        except OSError:
            return False
    try:
        if populated():
            with open(os.path.join(directory, "cgroup.kill"), "w") as f:
                f.write("1")
            if populated():
                wait_until_in_directory(directory, lambda: not populated(), timeout=timeout)
        os.rmdir(directory)
    except OSError:
        pass
    return not populated()


def fake_lpd_listener(name, backlog):
    """Where a fake lpd listens: a Unix socket named `name` in a fresh
    directory with a short path (sun_path holds 108 bytes), listening with
    `backlog`. Returns (directory, socket path, listening socket)."""
    directory = short_tempdir()
    path = os.path.join(directory, name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(backlog)
    return directory, path, listener


def answer_as_lpd(conn, result_for, record, allow_blank_lines=False, reply_for=None):
    """Plays lpd on one accepted socket `conn` (a fake lpd in front of a
    shim or lpctl) until the peer closes it: each line is a JSON message,
    handed to `record`; a request (a message with an id) is answered ok with
    `result_for(message)` as its result, or with `reply_for(message)`, the
    whole reply, when given (an error reply). A blank line is an error
    unless `allow_blank_lines` (lpd allows them; the crash line starts with
    one). Closes `conn`."""
    buf = b""
    with conn:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if allow_blank_lines and not line.strip():
                    continue
                msg = json.loads(line)
                record(msg)
                if "id" in msg:
                    reply = reply_for(msg) if reply_for else {"id": msg["id"], "ok": True, "result": result_for(msg)}
                    conn.sendall((json.dumps(reply) + "\n").encode())


def restart_while_waiting(lpd, fifo):
    """Kills `lpd` with SIGKILL and starts it again while a run's test is
    blocked reading `fifo` (a named pipe), then lets that test go on by
    writing to the pipe: the run ends under the new lpd."""
    lpd.kill9()
    lpd.start()
    with open(fifo, "w") as f:
        f.write("go")


def standalone_env(lpd):
    """`lpd.env()` without what would make a process part of a run that
    runs this test (LPD_RUN_ID, LPD_WORKER_ID, LPD_PAUSE_ON_FAILURE,
    PYTEST_ADDOPTS): an `lpctl run` started with it is a run of its own."""
    env = lpd.env()
    for name in ("LPD_RUN_ID", "LPD_WORKER_ID", "LPD_PAUSE_ON_FAILURE", "PYTEST_ADDOPTS"):
        env.pop(name, None)
    return env


def standalone_lpctl(lpd, *args, cwd=None, timeout=240):
    """`lpctl ARGS` on `lpd` in `cwd` with standalone_env(); the
    subprocess.CompletedProcess (text), whatever its exit code."""
    return subprocess.run([LPCTL_BIN, "--socket", lpd.socket, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=standalone_env(lpd))


def start_attach(lpd, run_id, env):
    """Starts `lpctl attach RUN_ID` on `lpd` with `env`, its stdout and
    stderr text pipes (the run's output, then lpctl's end line); returns
    the subprocess.Popen."""
    return subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "attach", run_id], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@contextlib.contextmanager
def killed_if_left_running(proc):
    """`with killed_if_left_running(proc):` around the lines that drive a
    subprocess.Popen: when they end with `proc` still running (an assertion
    failed, a wait timed out), it is killed and reaped, so no test leaves
    one behind. Yields `proc`."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_for_exit(proc, timeout=60):
    """Waits for a subprocess.Popen to exit and returns its code."""
    return proc.wait(timeout=timeout)


def read_line_with_timeout(stream, timeout):
    """Reads one line from a text pipe, waiting at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no line within timeout")
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            return stream.readline()


# The shim's sources, plus its C ring writer where this build made one
# (beside lpd; not in sanitizer builds): a PYTHONPATH value.
SHIM_MODULE_DIR = os.path.join(os.path.dirname(os.path.abspath(LPD_BIN)), "python")
SHIM_PYTHONPATH = os.pathsep.join([os.path.join(SOURCE_DIR, "shim", "python")] +
                                  ([SHIM_MODULE_DIR] if os.path.isdir(SHIM_MODULE_DIR) else []))
PYTHON = "/usr/bin/python3"


# -- h18try (issue 18): binaries other users may execute, wherever the clone is --
_staged = {}


def staged_install():
    """lpd, lpd-monitor, lpctl and the pytest shim copied into a fresh
    world-readable prefix under /tmp, in the layout `cmake --install` makes
    (bin/, lib/python3/dist-packages/), once per test process and removed
    at its exit. Tests that run lpctl, pytest or lpd as throwaway users use
    these: the build and source trees may sit where only root may enter (a
    clone in /root or in `mktemp -d`). An lpd started from bin/ finds its
    lpd-monitor and the shim there (daemon/host/install_paths.cpp). Returns
    {"prefix", "lpd", "lpctl", "lpd_monitor", "pythonpath"}."""
    if _staged.get("pid") == os.getpid():
        return _staged["paths"]
    import atexit
    import shutil
    prefix = tempfile.mkdtemp(prefix="lpd-e2e-staged-", dir="/tmp")
    os.chmod(prefix, 0o755)
    bin_dir = os.path.join(prefix, "bin")
    site = os.path.join(prefix, "lib", "python3", "dist-packages")
    os.makedirs(bin_dir)
    os.makedirs(site)
    build_bin = os.path.dirname(os.path.abspath(LPD_BIN))
    for source, name in ((LPD_BIN, "lpd"), (os.path.join(build_bin, "lpd-monitor"), "lpd-monitor"),
                         (LPCTL_BIN, "lpctl")):
        shutil.copy2(source, os.path.join(bin_dir, name))
    shim_sources = os.path.join(SOURCE_DIR, "shim", "python")
    for package in ("lpd_pytest", "pytest_live_pause"):
        if os.path.isdir(os.path.join(shim_sources, package)):
            shutil.copytree(os.path.join(shim_sources, package), os.path.join(site, package),
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if os.path.isdir(SHIM_MODULE_DIR):  # the C ring writer, where this build made one
        for entry in os.listdir(SHIM_MODULE_DIR):
            if entry.endswith(".so"):
                shutil.copy2(os.path.join(SHIM_MODULE_DIR, entry), os.path.join(site, entry))
    for directory, subdirs, files in os.walk(prefix):
        for d in subdirs:
            os.chmod(os.path.join(directory, d), 0o755)
        for f in files:
            path = os.path.join(directory, f)
            os.chmod(path, 0o755 if os.access(path, os.X_OK) else 0o644)
    paths = {"prefix": prefix, "lpd": os.path.join(bin_dir, "lpd"), "lpctl": os.path.join(bin_dir, "lpctl"),
             "lpd_monitor": os.path.join(bin_dir, "lpd-monitor"), "pythonpath": site}
    _staged.update(pid=os.getpid(), paths=paths)
    owner = os.getpid()
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(prefix, ignore_errors=True))
    return paths
# -- end h18try


class EventWaiter:
    """A subscription opened before the thing it waits for is started, so
    no event can slip by: wait() blocks on the socket, never sleeps."""

    def __init__(self, lpd, types=None, run_id=None):
        self.client = lpd.client()
        fields = {}
        if types:
            fields["types"] = types
        if run_id:
            fields["run_id"] = run_id
        reply = self.client.request("events.subscribe", **fields)
        assert reply["ok"], reply
        self.seen = []

    def wait(self, event_type, timeout=60, condition=None, **match):
        """The data of the first `event_type` event (one seen earlier and
        not taken yet, else the next to come) whose fields equal `match`
        and, given a `condition`, whose data meets it. Raises TimeoutError
        after `timeout` seconds."""
        def wanted(msg):
            return (msg["event"] == event_type and all(msg["data"].get(k) == v for k, v in match.items())
                    and (condition is None or condition(msg["data"])))
        for data in self.seen:
            if wanted(data):
                self.seen.remove(data)
                return data["data"]
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {event_type} {match} within {timeout} s; saw {self.seen}")
            msg = self.client.read_message(timeout=left)
            assert msg is not None, "lpd closed the event stream"
            if "event" not in msg:
                continue
            if wanted(msg):
                return msg["data"]
            self.seen.append(msg)

    def close(self):
        self.client.close()


def strict_project(directory, files):
    """Makes `directory` (a pathlib.Path) a pytest project that turns every
    warning into an error, as strict projects do (so a warning of the shim
    fails its session), holding `files` ({file name: text}). Returns it."""
    directory.mkdir()
    (directory / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def source_shim_env(lpd, **extra):
    """`lpd.env(**extra)` for an inner pytest session that loads the shim
    from the source tree (PYTHONPATH), without the outer session's
    PYTEST_ADDOPTS."""
    env = lpd.env(PYTHONPATH=os.path.join(SOURCE_DIR, "shim", "python"), **extra)
    env.pop("PYTEST_ADDOPTS", None)
    return env


def seed_run(state_dir, run_id, created_at, ended_at=None, owner=0, pid=0):
    """A run as a previous lpd left it in the state directory (the format
    RunService restores): the legitimate seam for history that is old."""
    run_dir = os.path.join(state_dir, "runs", run_id)
    os.makedirs(run_dir, mode=0o700, exist_ok=True)
    record = {"run_id": run_id, "pid": pid, "hostname": "ci", "cwd": "/src", "argv": ["pytest"],
              "created_at": created_at, "status": "ended" if ended_at else "active", "owner_uid": owner,
              "workers": [{"worker_id": "controller", "pid": pid}], "supervised": False}
    if ended_at:
        record["ended_at"] = ended_at
    with open(os.path.join(run_dir, "run.json"), "w") as f:
        json.dump(record, f)
    return run_dir


def write_tests(directory, name, source):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(source)
    return path


def start_pytest(lpd, test_dir, *args, run_id=None, env_extra=None, socket_path=None, stdin=subprocess.DEVNULL):
    """Starts Debian's pytest with the lpd plugin loaded the zero-install way."""
    env = lpd.env() if lpd is not None else dict(os.environ)
    env["PYTHONPATH"] = SHIM_PYTHONPATH
    env["PYTEST_PLUGINS"] = "lpd_pytest"
    env.pop("LPD_RUN_ID", None)
    if socket_path is not None:
        env["LPD_SOCKET"] = socket_path
    if run_id:
        env["LPD_RUN_ID"] = run_id
    if env_extra:
        env.update(env_extra)
    return subprocess.Popen([PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=test_dir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=stdin)


def finish(proc, timeout=120):
    if proc.stdin is not None and proc.stdin.closed:
        proc.stdin = None  # closed by the test on purpose
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def exhaust_descriptors(lpd, most=500):
    """Connects to `lpd` (started with a low `rlimit_nofile`) until it has no
    descriptor left, as a flood of clients would. lpd answers the connection
    that finds it out of descriptors "unavailable" and closes it, and is
    then exactly full. Returns (the connections holding its descriptors,
    that reply); closing the connections gives the descriptors back."""
    held = []
    for _ in range(most):
        client = RawClient(lpd.socket)
        try:
            client.send_raw(json.dumps({"id": 1, "op": "hello", "role": "cli", "protocol": 1}) + "\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # turned away before the hello went out: its reply is still there to read
        reply = client.read_message(timeout=30)
        assert reply is not None, "lpd closed a connection without a word"
        if reply["ok"]:
            held.append(client)
            continue
        client.close()
        assert reply["error"]["code"] == "unavailable", reply
        return held, reply
    for client in held:
        client.close()
    raise AssertionError(f"lpd did not run out of descriptors within {most} connections")


def proc_start_time(pid):
    """h14fixC: the process's start time (clock ticks after boot, as lpd
    records it), or None when the pid does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def proc_state(pid):
    """'Z', 'S', ... from /proc/PID/stat, or None when the pid does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def gone(pid):
    """True when `pid` no longer runs (absent, or a zombie nobody reaped yet)."""
    return proc_state(pid) in (None, "Z", "X")


def kill_leftovers(pids):
    """Kills (SIGKILL) each of `pids` that still runs: what a failed check
    left running must not outlive the test. Only after a failure: a pid
    confirmed gone may since belong to someone else."""
    for pid in pids:
        if not gone(pid):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


def wait_gone(pid, timeout=60):
    """Waits on a pidfd (an event, not a poll loop) for a process the test
    did not start; True once it is gone."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    return gone(pid)


def wait_all_gone(pids, timeout=30):
    """wait_gone for several pids under one deadline; returns those still running."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        wait_gone(pid, max(0.0, deadline - time.monotonic()))
    return [pid for pid in pids if not gone(pid)]


_IN_MODIFY, _IN_CLOSE_WRITE, _IN_MOVED_TO, _IN_CREATE = 0x2, 0x8, 0x80, 0x100


def wait_until_in_directory(directory, condition, timeout=120):
    """Waits (inotify on `directory`: an event, no polling) until
    `condition()` holds; checks it after every change of a file there.
    Returns True, or False at the deadline."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    try:
        mask = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE
        assert libc.inotify_add_watch(fd, os.fsencode(directory), mask) >= 0, os.strerror(ctypes.get_errno())
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                try:
                    os.read(fd, 64 * 1024)
                except BlockingIOError:
                    pass
        return True
    finally:
        os.close(fd)


def run_as_user(user, group, argv, socket, cwd=None, check=True, **env):
    """Runs `argv` as `user` (a pwd entry) with `group` as an extra group,
    in `cwd` (default: the user's home), with nothing of root's environment:
    PATH, HOME, LPD_SOCKET=`socket` and `env`. Asserts it exited 0 when
    `check`; returns the subprocess.CompletedProcess (text)."""
    result = subprocess.run(argv, user=user.pw_uid, group=user.pw_gid, extra_groups=[grp.getgrnam(group).gr_gid],
                            cwd=cwd or user.pw_dir,
                            env={"PATH": "/usr/bin:/bin", "HOME": user.pw_dir, "LPD_SOCKET": socket, **env},
                            capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@contextlib.contextmanager
def lpd_for_group(group, *extra):
    """A root lpd the members of `group` may use: its directory open to
    them and --socket-group `group`, started with `extra` arguments. Yields
    it; afterwards kills its helpers, stops it (asserting a clean exit) and
    removes its directory."""
    d = Lpd()
    os.chmod(d.root, 0o755)  # users must reach the socket inside
    d.start("--socket-group", group, *extra)
    try:
        yield d
    finally:
        d.kill_helpers()
        d.stop()
        shutil.rmtree(d.root, ignore_errors=True)


@contextlib.contextmanager
def project_for_users(prefix):
    """One project directory every user may work in, inside a fresh
    directory under /tmp that others may enter (pytest's tmp_path is
    root's alone). Yields its path; removes it afterwards."""
    where = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    try:
        os.chmod(where, 0o755)
        project = os.path.join(where, "project")
        os.mkdir(project)
        os.chmod(project, 0o777)
        yield project
    finally:
        shutil.rmtree(where, ignore_errors=True)


USER_ADMIN_LOCK = "/tmp/lpd-e2e-user-admin.lock"


def user_admin(argv, **kwargs):
    """subprocess.run of useradd/userdel/groupadd, one at a time across every
    test process: two at once fail on /etc/passwd's lock file ("cannot lock
    /etc/passwd; try again later"), which ctest -j2 made happen. The wait is
    a blocking flock, not a retry loop."""
    import fcntl
    fd = os.open(USER_ADMIN_LOCK, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return subprocess.run(argv, **kwargs)
    finally:
        os.close(fd)


def remove_user(name):
    """A user with live processes cannot be deleted: end them first."""
    subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
    user_admin(["userdel", "-r", name], capture_output=True)


@contextlib.contextmanager
def throwaway_users(users, group, admin_group=None, admins=(), outsiders=()):
    """Creates `users` ({key: user name}) for one test module, removing any an
    earlier run left first: each is in `group`, the keys in `admins` also in
    `admin_group`, those in `outsiders` in neither. Yields {key: pwd entry};
    removes the users and the groups afterwards, whatever the tests did."""
    groups = [group] + ([admin_group] if admin_group else [])
    for g in groups:
        user_admin(["groupadd", "-f", g], check=True)
    try:
        for key, name in users.items():
            remove_user(name)
            member_of = [] if key in outsiders else [group] + ([admin_group] if key in admins else [])
            extra = ["-G", ",".join(member_of)] if member_of else []
            user_admin(["useradd", "-m", "-s", "/bin/sh", *extra, name], check=True)
        yield {key: pwd.getpwnam(name) for key, name in users.items()}
    finally:
        for name in users.values():
            remove_user(name)
        for g in groups:
            user_admin(["groupdel", g], capture_output=True)
