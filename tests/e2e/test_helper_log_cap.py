"""h14logcap (issue 14, second round): a helper's log cannot fill lpd's
state directory. lpd frees the oldest part of a log past --helper-log-max
(and of one user's logs past --helper-logs-per-user-max) while the helper
writes on; the newest output stays readable; the record says how much was
dropped; the bound holds across an lpd killed with SIGKILL and restarted.

Every wait is an event: the helper's answer (given once its writes are
done), or lpd's process.log_dropped event."""

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys

import pytest

from lpd_harness import (SOURCE_DIR, EventWaiter, Lpd, lpd_for_group, run_as_user, staged_install, throwaway_users,
                         user_admin)

HELPER = os.path.join(os.path.dirname(__file__), "helpers", "chatty_server.py")
MIB = 1024 * 1024
CAP = 1 * MIB


def start_lpd(d, *extra):
    return d.start("--helper-log-max", str(CAP), *extra)


@pytest.fixture
def lpd_cap():
    d = Lpd()
    start_lpd(d)
    yield d
    if d.proc is not None:
        d.stop()
    shutil.rmtree(d.root, ignore_errors=True)


def ensure_chatty(lpd, name, *extra):
    sock = os.path.join(lpd.root, name + ".sock")
    result = lpd.lpctl_json("ensure", name, "--pattern", "listening", *extra, "--", sys.executable, HELPER, sock)
    return result, sock


def ask(sock, command):
    """The helper's one-line answer (it answers once the work is done)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(120)
        s.connect(sock)
        s.sendall(command.encode())
        data = b""
        while not data.endswith(b"\n"):
            piece = s.recv(100)
            assert piece, "the helper closed without answering"
            data += piece
    return data.decode().strip()


def burst(sock, mib):
    """Has the helper write `mib` MiB; returns its last line number."""
    answer = ask(sock, f"burst {mib}")
    assert answer.startswith("done "), answer
    return int(answer.split()[1])


class DropWatch(EventWaiter):
    """A subscription to process.log_dropped, opened before the writes."""

    def __init__(self, lpd):
        super().__init__(lpd, types=["process.log_dropped"])

    def wait_for(self, name, condition, timeout=300):
        """The first process.log_dropped of `name` whose record meets `condition`."""
        return self.wait("process.log_dropped", timeout=timeout, condition=condition, name=name)


def dropped_at(path):
    """Where the kept part of a log begins (SEEK_DATA)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_DATA)
    finally:
        os.close(fd)


def disk_use(path):
    return os.stat(path).st_blocks * 512


def record_of(lpd, name):
    return next(p for p in lpd.lpctl_json("ps", "-a")["processes"] if p["name"] == name)


def assert_newest_lines_shown(lpd, name, last):
    tail = lpd.lpctl("logs", "-n", "3", name).stdout.splitlines()
    assert [line.split()[1] for line in tail] == [str(last - 2), str(last - 1), str(last)], tail
    whole = lpd.lpctl("logs", name)
    assert "\0" not in whole.stdout, "the freed front was sent as zeros"
    assert whole.stdout.endswith(f"line {last} {'x' * 100}\n")
    assert len(whole.stdout) <= CAP
    assert "lpd dropped the oldest" in whole.stderr, whole.stderr


def test_a_chatty_helper_stays_under_its_cap_and_keeps_serving(lpd_cap):
    lpd = lpd_cap
    watch = DropWatch(lpd)
    result, sock = ensure_chatty(lpd, "chatty")
    log = result["log_path"]
    last = burst(sock, 24)  # 24 times the cap, as fast as Python writes it
    size = os.stat(log).st_size
    assert size >= 24 * MIB  # offsets keep counting what was freed
    # After its last write lpd looks once more: then at most half the cap stays (plus a block).
    dropped = watch.wait_for("chatty", lambda r: r["log_dropped_bytes"] >= size - CAP)
    assert dropped["state"] == "ready"
    assert disk_use(log) <= CAP, disk_use(log)
    assert ask(sock, "ping") == "pong"  # never blocked, never killed
    assert_newest_lines_shown(lpd, "chatty", last)
    record = record_of(lpd, "chatty")
    assert record["state"] == "ready"
    assert size - CAP <= record["log_dropped_bytes"] < size
    # proc.logs says where the kept part begins; nothing before it is sent.
    reply = json.loads(lpd.lpctl("--json", "logs", "chatty").stdout.splitlines()[0])["data"]
    assert reply["dropped_bytes"] >= size - CAP and reply["offset"] == reply["dropped_bytes"]
    assert reply["skipped_bytes"] == 0
    assert "over its cap" in lpd.log_text()
    # The excerpt a failed test's report gets (JUnit system-out) skips the freed front too.
    sys.path.insert(0, os.path.join(SOURCE_DIR, "shim", "python"))
    from lpd_pytest.process_plugin import read_since
    excerpt = read_since(log, 0)
    assert "\0" not in excerpt and excerpt.endswith(f"line {last} {'x' * 100}\n")
    assert read_since(log, 0, limit=100 * MIB).startswith(f"[... {dropped_at(log)} bytes before these ...]")

    # It goes on: a second flood is capped the same way.
    last = burst(sock, 12)
    size = os.stat(log).st_size
    watch.wait_for("chatty", lambda r: r["log_dropped_bytes"] >= size - CAP)
    assert disk_use(log) <= CAP
    assert_newest_lines_shown(lpd, "chatty", last)
    watch.close()


def test_the_cap_holds_after_lpd_is_killed_and_restarted(lpd_cap):
    lpd = lpd_cap
    result, sock = ensure_chatty(lpd, "chatty")
    log = result["log_path"]
    assert record_of(lpd, "chatty")["state"] == "ready"  # recorded as ready before lpd dies
    lpd.kill9()
    # lpd is gone: nobody caps the helper's writes meanwhile.
    last = burst(sock, 16)
    assert disk_use(log) > 8 * MIB
    start_lpd(lpd)
    # The restarted lpd capped it before serving anyone.
    assert disk_use(log) <= CAP, disk_use(log)
    record = record_of(lpd, "chatty")
    assert record["state"] == "ready" and record["adopted"]
    assert record["log_dropped_bytes"] >= os.stat(log).st_size - CAP
    assert_newest_lines_shown(lpd, "chatty", last)
    # And it watches the re-adopted helper's log again.
    watch = DropWatch(lpd)
    last = burst(sock, 16)
    size = os.stat(log).st_size
    watch.wait_for("chatty", lambda r: r["log_dropped_bytes"] >= size - CAP)
    assert disk_use(log) <= CAP
    assert ask(sock, "ping") == "pong"
    assert_newest_lines_shown(lpd, "chatty", last)
    watch.close()


def test_a_ready_line_after_much_output_is_still_found_then_the_log_is_capped(lpd_cap):
    lpd = lpd_cap
    # 6 MiB, then the ready line: the cap frees nothing the pattern has not read.
    script = ("head -c 6291456 /dev/zero | tr '\\0' x | fold -w 99; echo; echo listening; exec sleep 600")
    result = lpd.lpctl_json("ensure", "late", "--pattern", "^listening", "--", "/bin/sh", "-c", script)
    assert result["ready_line"] == "listening"
    # Capped right after it was found, before lpd answers the next request.
    record = record_of(lpd, "late")
    assert disk_use(result["log_path"]) <= CAP
    assert record["log_dropped_bytes"] > 5 * MIB
    assert lpd.lpctl("logs", "-n", "1", "late").stdout == "listening\n"


def logs_disk_use(lpd):
    logs = os.path.join(lpd.state_dir, "logs")
    return sum(disk_use(os.path.join(logs, f)) for f in os.listdir(logs))


def test_one_users_logs_are_bounded_together_and_the_oldest_kept_log_goes_first(lpd_unstarted):
    lpd = lpd_unstarted
    user_cap = 3 * MIB
    # Per log 8 MiB: only the user's total matters here.
    lpd.start("--helper-log-max", str(8 * MIB), "--helper-logs-per-user-max", str(user_cap))
    watch = DropWatch(lpd)
    first, sock_a = ensure_chatty(lpd, "a")
    burst(sock_a, 1)
    second, sock_a = ensure_chatty(lpd, "a", "--restart")  # a.1.log is now a kept log of an earlier start
    assert first["log_path"] != second["log_path"]
    assert first["log_path"] in record_of(lpd, "a")["logs"]
    last_a = burst(sock_a, 1)
    _, sock_b = ensure_chatty(lpd, "b")
    last_b = burst(sock_b, 1)  # each log a little over 1 MiB: over 3 MiB together, so a.1.log, the oldest, goes
    record = watch.wait_for("a", lambda r: first["log_path"] not in r["logs"])
    assert not os.path.exists(first["log_path"])
    assert record["logs"] == [second["log_path"]]
    # That was enough: the running helpers' logs are whole.
    assert logs_disk_use(lpd) <= user_cap
    assert record_of(lpd, "a")["log_dropped_bytes"] == 0
    assert record_of(lpd, "b")["log_dropped_bytes"] == 0
    assert lpd.lpctl("logs", "a").stdout.startswith("listening\nline ")
    assert lpd.lpctl("logs", "b").stdout.startswith("listening\nline ")
    assert lpd.lpctl("logs", "-n", "1", "b").stdout.split()[1] == str(last_b)
    assert lpd.lpctl("logs", "-n", "1", "a").stdout.split()[1] == str(last_a)

    # Over the total with running helpers only: they are cut, the newest output stays.
    last_b = burst(sock_b, 4)
    log_b = record_of(lpd, "b")["log_path"]
    size_b = os.stat(log_b).st_size
    watch.wait_for("b", lambda r: (size_b - r["log_dropped_bytes"]) + disk_use(second["log_path"]) <= user_cap)
    assert logs_disk_use(lpd) <= user_cap
    assert lpd.lpctl("logs", "-n", "1", "b").stdout.split()[1] == str(last_b)
    assert ask(sock_a, "ping") == "pong" and ask(sock_b, "ping") == "pong"
    watch.close()


def test_limits_are_shown_in_help_and_checked():
    d = Lpd()
    try:
        from lpd_harness import LPD_BIN
        import subprocess
        help_text = subprocess.run([LPD_BIN, "start", "--help"], capture_output=True, text=True).stdout
        for option in ("--helper-log-max", "--helper-logs-per-user-max", "--helpers-per-user-max"):
            assert option in help_text
        bad = subprocess.run([LPD_BIN, "start", "--foreground", "--socket", d.socket, "--state-dir", d.state_dir,
                              "--helper-log-max", "100"], capture_output=True, text=True)
        assert bad.returncode != 0 and "at least" in bad.stderr
    finally:
        shutil.rmtree(d.root, ignore_errors=True)


# -- a shared CI host: a root lpd, throwaway users ----------------------------

GROUP = "lpdlogcap"
USERS = {"a": "lpdlogcap_a", "b": "lpdlogcap_b"}


@pytest.fixture(scope="module")
def users():
    if os.geteuid() != 0:
        pytest.skip("creates users and runs a root lpd")
    with throwaway_users(USERS, GROUP) as entries:
        yield entries

@pytest.fixture
def shared_host(users):
    """A root lpd with a 1 MiB cap per log, 2 MiB per user, 2 helpers per
    user, and lpctl where the users may run it."""
    with lpd_for_group(GROUP, "--helper-log-max", str(CAP), "--helper-logs-per-user-max", str(2 * MIB),
                       "--helpers-per-user-max", "2") as d:
        yield d, staged_install()["lpctl"]


def as_user(user, lpd, lpctl, *args, check=True):
    return run_as_user(user, GROUP, [lpctl, "--socket", lpd.socket, *args], lpd.socket, check=check)


def ensure_writer(user, lpd, lpctl, name, kib, check=True):
    """A helper of `user` that writes `kib` KiB of numbered lines, then its
    ready line, then waits: when ensure answers, everything is written."""
    script = (f"i=0; while [ $i -lt {kib * 10} ]; do printf 'line %05d %090d\\n' $i 0; i=$((i+1)); done; "
              "echo listening; exec sleep 600")
    return as_user(user, lpd, lpctl, "--json", "ensure", name, "--pattern", "^listening", "--", "/bin/sh", "-c",
                   script, check=check)


def test_one_users_flood_never_touches_another_users_logs(shared_host, users):
    lpd, lpctl = shared_host
    quiet = json.loads(ensure_writer(users["b"], lpd, lpctl, "quiet", 600).stdout)
    quiet_use = disk_use(quiet["log_path"])
    f1 = json.loads(ensure_writer(users["a"], lpd, lpctl, "f1", 3000).stdout)
    f2 = json.loads(ensure_writer(users["a"], lpd, lpctl, "f2", 3000).stdout)
    # Ready was answered once all was written; the cap acts right after, before the next request.
    records = {p["name"]: p for p in lpd.lpctl_json("ps", "-a")["processes"]}
    for name, result in (("f1", f1), ("f2", f2)):
        assert records[name]["state"] == "ready"
        assert disk_use(result["log_path"]) <= CAP
        assert records[name]["log_dropped_bytes"] > 0
        tail = as_user(users["a"], lpd, lpctl, "logs", "-n", "1", name).stdout
        assert tail == "listening\n"
    assert records["quiet"]["log_dropped_bytes"] == 0
    assert disk_use(quiet["log_path"]) == quiet_use
    assert as_user(users["b"], lpd, lpctl, "logs", "quiet").stdout.startswith("line 00000 ")

    # Two running helpers fill user a's quota of records: a third is refused...
    refused = ensure_writer(users["a"], lpd, lpctl, "f3", 1, check=False)
    assert refused.returncode != 0 and "--helpers-per-user-max" in refused.stderr, refused.stderr
    # ...user b is not counted against it...
    json.loads(ensure_writer(users["b"], lpd, lpctl, "quiet2", 1).stdout)
    # ...and once one ended, the oldest ended one is forgotten, logs and all, to make room.
    as_user(users["a"], lpd, lpctl, "kill", "f1")
    ensure_writer(users["a"], lpd, lpctl, "f3", 1)
    names = {p["name"] for p in lpd.lpctl_json("ps", "-a")["processes"]}
    assert names == {"quiet", "quiet2", "f2", "f3"}
    assert not os.path.exists(f1["log_path"])
    assert "forgotten" in lpd.log_text()
