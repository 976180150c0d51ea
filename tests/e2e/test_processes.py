"""Issue 4: lpd supervises helper processes: starts them once, knows when
they are ready, reuses them, survives its own restart, kills them for sure.

Every wait here is an event: the daemon's reply, a pipe read, a pidfd."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from lpd_harness import LPCTL_BIN, SOURCE_DIR, EventWaiter, exhaust_descriptors, gone, proc_state, wait_gone

HELPER = os.path.join(os.path.dirname(__file__), "helpers", "helper_server.py")
PY = sys.executable


def helper(*args):
    return ["--", PY, HELPER, *args]


def ensure(lpd, name, *args, pattern="ready to accept", check=True, extra=()):
    return lpd.lpctl("--json", "ensure", name, "--pattern", pattern, *extra, *helper(*args), check=check)


def ensure_json(lpd, name, *args, **kw):
    return json.loads(ensure(lpd, name, *args, **kw).stdout)





def ps(lpd, all=True):
    args = ["ps", "-a"] if all else ["ps"]
    return {p["name"]: p for p in lpd.lpctl_json(*args)["processes"]}


def log_text(lpd, name, *args):
    return lpd.lpctl("logs", name, *args).stdout


def children_in_log(text):
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith("child ")]


# -- starting and waiting -----------------------------------------------------


def test_delayed_ready_line_is_waited_for(lpd):
    result = ensure_json(lpd, "db", "--delay", "0.5", "--noise", "3")
    assert result["reused"] is False
    assert result["state"] == "ready"
    assert result["ready_line"].startswith("ready to accept connections")
    assert result["startup_seconds"] >= 0.5
    assert not gone(result["pid"])
    # Issue 14: one log per start, logs/STEM.START.log, STEM naming the owner and the scope.
    assert os.path.dirname(result["log_path"]) == os.path.join(lpd.state_dir, "logs")
    assert os.path.basename(result["log_path"]).startswith(f"db.u{os.getuid()}.") and result["log_path"].endswith(".1.log")
    stem = os.path.basename(result["log_path"])[:-len(".1.log")]
    with open(result["log_path"], "rb") as f:
        data = f.read()
    # The offset is just after the matching line.
    assert data[:result["offset"]].decode().endswith(result["ready_line"] + "\n")
    human = lpd.lpctl("ps").stdout
    assert "db" in human and str(result["pid"]) in human and "ready" in human
    # The waiters are answered first and the record written right after, in
    # the same turn of lpd's loop: any later request (the ps above) sees it.
    record = json.load(open(os.path.join(lpd.state_dir, "procs", stem + ".json")))
    assert record["pid"] == result["pid"] and record["state"] == "ready" and record["start_time"] > 0
    assert record["owner"] == os.getuid() and record["pattern"] == "ready to accept"
    lpd.lpctl("kill", "db")


def test_live_one_is_reused(lpd):
    first = ensure_json(lpd, "db")
    again = ensure_json(lpd, "db", "--exit", "9")  # a different command: not started, the live one is reused
    assert again["reused"] is True
    assert again["pid"] == first["pid"]
    human = lpd.lpctl("ensure", "db", "--pattern", "x", "--", "false").stdout
    assert "reused" in human and str(first["pid"]) in human
    lpd.lpctl("kill", "db")


def test_restart_replaces_a_live_one(lpd):
    first = ensure_json(lpd, "db")
    second = ensure_json(lpd, "db", extra=("--restart",))
    assert second["reused"] is False and second["pid"] != first["pid"]
    assert gone(first["pid"])
    # Issue 14: the first start's log keeps its own name (no rename to db.log.1).
    assert second["logs"] == [second["log_path"], first["log_path"]]
    assert all(os.path.exists(path) for path in second["logs"])
    lpd.lpctl("kill", "db")


def test_exit_before_pattern_is_reported_at_exit_with_code(lpd):
    started = time.monotonic()
    r = ensure(lpd, "db", "--noise", "2", "--exit", "3", extra=("--timeout", "120"), check=False)
    assert time.monotonic() - started < 60  # reported at the exit, not after the 120 s timeout
    assert r.returncode == 1
    assert "exited with exit code 3 before a line matched" in r.stderr
    assert "noise line 1" in r.stderr and "giving up with exit code 3" in r.stderr  # the last log lines
    assert "[unavailable]" in r.stderr
    p = ps(lpd)["db"]
    assert p["state"] == "exited" and p["exit_status"]["code"] == 3


def test_death_by_signal_before_pattern_names_the_signal(lpd):
    r = ensure(lpd, "db", "--abort", check=False)
    assert r.returncode == 1
    assert "signal 6 (SIGABRT)" in r.stderr
    assert ps(lpd)["db"]["exit_status"]["signal"] == signal.SIGABRT


def test_pattern_that_never_matches_times_out_and_kills(lpd):
    r = ensure(lpd, "db", "--never", "--children", "1", extra=("--timeout", "0.5"), check=False)
    assert r.returncode == 1
    assert "printed no line matching" in r.stderr and "it is being killed" in r.stderr
    assert "[timeout]" in r.stderr
    text = log_text(lpd, "db")
    assert "helper starting" in r.stderr  # last lines are shown
    pid = ps(lpd)["db"]["pid"]
    # The kill follows the reply; the process group ends with it.
    assert wait_gone(pid)
    for child in children_in_log(text):
        assert wait_gone(child)


def test_keep_on_timeout_leaves_it_running(lpd):
    r = ensure(lpd, "db", "--never", extra=("--timeout", "0.3", "--keep-on-timeout"), check=False)
    assert r.returncode == 1 and "left running" in r.stderr
    p = ps(lpd)["db"]
    assert p["state"] == "starting" and not gone(p["pid"])
    lpd.lpctl("kill", "db")
    assert gone(p["pid"])


def test_max_read_lines_without_match_fails(lpd):
    r = ensure(lpd, "db", "--noise", "20", "--delay", "30", extra=("--max-read-lines", "5"), check=False)
    assert r.returncode == 1
    assert "none of the first 5 lines" in r.stderr


def test_bad_regex_is_refused_before_anything_is_spawned(lpd):
    r = lpd.lpctl("ensure", "db", "--pattern", "ready(", *helper(), check=False)
    assert r.returncode == 1
    assert "invalid pattern" in r.stderr and "[bad_request]" in r.stderr
    assert not os.path.exists(os.path.join(lpd.state_dir, "logs", "db.log"))
    assert ps(lpd) == {}


def test_bad_name_is_refused(lpd):
    r = lpd.lpctl("ensure", "../x", "--pattern", "ready", *helper(), check=False)
    assert r.returncode == 1
    assert "invalid process name" in r.stderr and "[bad_request]" in r.stderr
    assert not os.path.exists(os.path.join(lpd.state_dir, "x.json"))
    assert not os.path.exists(os.path.join(lpd.state_dir, "logs", "..", "x.log"))
    assert ps(lpd) == {}
    for op in ("logs", "kill"):
        assert "invalid process name" in lpd.lpctl(op, "../x", check=False).stderr


def test_command_not_found_is_clear(lpd):
    r = lpd.lpctl("ensure", "db", "--pattern", "ready", "--", "no-such-command-lpd", check=False)
    assert r.returncode == 1
    assert "command not found: no-such-command-lpd" in r.stderr
    assert ps(lpd) == {}


def test_python_style_pattern_and_long_line(lpd):
    # A 10 MB line without a newline before the ready line neither hangs nor breaks matching.
    result = ensure_json(lpd, "db", "--long-line", str(10 * 1024 * 1024), "--serve",
                         pattern=r"ready to accept connections port=(?P<port>\d+)")
    assert result["state"] == "ready"
    assert result["offset"] > 10 * 1024 * 1024
    lpd.lpctl("kill", "db")


def test_env_cwd_and_clean_env(lpd, tmp_path):
    r = ensure_json(lpd, "db", extra=("--env", "HELPER_ENV=one", "--cwd", str(tmp_path)))
    text = log_text(lpd, "db")
    assert f"cwd={tmp_path}" in text and "HELPER_ENV=one" in text
    assert f"HOME={os.environ.get('HOME', '')}" in text  # the caller's environment came along
    lpd.lpctl("kill", "db")
    ensure_json(lpd, "db2", extra=("--clean-env", "--env", "HELPER_ENV=two"))
    text = log_text(lpd, "db2")
    assert "HELPER_ENV=two" in text and "HOME=\n" in text
    lpd.lpctl("kill", "db2")
    assert r["pid"] > 0


def test_four_concurrent_ensures_start_it_once(lpd, tmp_path):
    count_file = tmp_path / "starts"
    procs = [subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "--json", "ensure", "db", "--pattern",
                               "ready to accept", *helper("--delay", "0.5", "--count-file", str(count_file))],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=lpd.env())
             for _ in range(4)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert len({r["pid"] for r in results}) == 1
    assert count_file.read_text().splitlines() == [str(results[0]["pid"])]
    lpd.lpctl("kill", "db")


# -- killing --------------------------------------------------------------------


def test_kill_stops_the_whole_process_tree(lpd):
    result = ensure_json(lpd, "tree", "--children", "3")
    children = children_in_log(log_text(lpd, "tree"))
    assert len(children) == 3 and not any(gone(c) for c in children)
    out = lpd.lpctl("kill", "tree").stdout
    assert f"killed {result['full_name']} (pid" in out and "SIGTERM" in out  # h14fixB: by its full name
    # kill returns once every member is gone.
    assert gone(result["pid"])
    assert all(gone(c) for c in children)
    p = ps(lpd)["tree"]
    assert p["state"] == "killed" and p["exit_status"]["signal"] == signal.SIGTERM
    assert "tree" not in ps(lpd, all=False)
    again = lpd.lpctl_json("kill", "tree")
    assert again["was_running"] is False


def test_kill_escalates_to_sigkill_after_grace(lpd):
    result = ensure_json(lpd, "stubborn", "--ignore-term")
    killed = lpd.lpctl_json("kill", "stubborn", "--grace", "0.5")
    assert killed["forced"] is True and killed["exit_status"]["signal"] == signal.SIGKILL
    assert gone(result["pid"])


def test_kill_with_another_signal(lpd):
    result = ensure_json(lpd, "db")
    killed = lpd.lpctl_json("kill", "db", "--signal", "INT")
    assert killed["exit_status"]["signal"] == signal.SIGINT
    assert gone(result["pid"])
    assert "unknown signal" in lpd.lpctl("kill", "db", "--signal", "NOPE", check=False).stderr


def test_kill_all_stops_every_tree(lpd):
    a = ensure_json(lpd, "a", "--children", "2")
    b = ensure_json(lpd, "b", "--children", "2")
    children = children_in_log(log_text(lpd, "a")) + children_in_log(log_text(lpd, "b"))
    assert len(children) == 4
    out = lpd.lpctl("kill-all").stdout
    assert f"killed {a['full_name']} (pid" in out and f"killed {b['full_name']} (pid" in out  # h14fixB: full names
    assert gone(a["pid"]) and gone(b["pid"]) and all(gone(c) for c in children)
    assert lpd.lpctl("kill-all").stdout.strip() == "nothing to kill"
    assert lpd.lpctl_json("kill-all") == {"killed": [], "kept": [], "released": [],  # h14owner: kept, released
                                          # h14fixB: counts of every kind, entries left out of a bounded reply
                                          "killed_count": 0, "kept_count": 0, "released_count": 0, "omitted": 0}


def test_kill_unknown_name_is_not_found(lpd):
    r = lpd.lpctl("kill", "nothing", check=False)
    assert r.returncode == 1 and "[not_found]" in r.stderr


# A leader that dies of SIGTERM and a child that ignores it (it says so only
# once its trap is set, and that line is the ready line).
STUBBORN_CHILD = "sh -c 'trap \"\" TERM; echo \"child $$\"; echo ready to accept; exec sleep 1000' & wait"


def reply_with_id(client, msg_id, timeout=60):
    while True:
        msg = client.read_message(timeout=timeout)
        assert msg is not None, f"lpd closed the connection before answering id {msg_id}"
        if msg.get("id") == msg_id:
            return msg


def test_kill_out_of_descriptors_answers_only_once_every_member_is_seen_gone(lpd_unstarted):
    """Out of descriptors, lpd can pin no member of the tree it kills (no
    pidfd, no /proc scan). That is no evidence of their end: the group still
    gets the signal, and the kill is answered only once lpd has seen every
    member end, which it can once it has descriptors again."""
    d = lpd_unstarted
    d.start(rlimit_nofile=64)
    leader = json.loads(d.lpctl("--json", "ensure", "stubborn", "--pattern", "ready to accept", "--",
                                "sh", "-c", STUBBORN_CHILD).stdout)["pid"]
    [child] = children_in_log(log_text(d, "stubborn"))
    events = EventWaiter(d, types=["process.killed", "process.exited"])
    keeper = d.client()  # connected while lpd has descriptors
    flood = []
    try:
        flood, _ = exhaust_descriptors(d)
        keeper.send_raw(json.dumps({"id": 100, "op": "proc.kill", "name": "stubborn", "grace": 0.2}) + "\n")
        # The group had SIGTERM: the leader ends of it, the child ignores it.
        events.wait("process.killed", timeout=30, name="stubborn")
        keeper.send_raw(json.dumps({"id": 101, "op": "ping"}) + "\n")
        first = keeper.read_message(timeout=30)
        assert first is not None
        if first.get("id") == 100:
            # Only if lpd truly saw the child end (it found descriptors somehow).
            assert gone(child), f"kill answered while its child {child} still runs: {first}"
            killed = first
        else:
            assert first.get("id") == 101 and first["ok"], first
            for client in flood:
                client.close()
            flood = []
            killed = reply_with_id(keeper, 100)
        assert killed["ok"], killed
        assert killed["result"]["forced"] is True and killed["result"]["was_running"] is True, killed
        assert gone(child)
        assert "cannot look at every member of its session" in d.log_text()
    finally:
        for client in flood:
            client.close()
        keeper.close()
        events.close()
        for pid in (child, leader):
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


# -- logs -------------------------------------------------------------------------


def test_logs_tail_and_follow_until_the_process_ends(lpd):
    result = ensure_json(lpd, "db", "--noise", "5")
    assert log_text(lpd, "db", "-n", "2").splitlines()[0] == "noise line 4"
    follower = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "logs", "db", "-f"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=lpd.env())
    seen = []
    while True:
        line = follower.stdout.readline()
        assert line, follower.stderr.read()
        seen.append(line)
        if line.startswith("ready to accept"):
            break
    os.kill(result["pid"], signal.SIGUSR1)  # the helper answers with a new log line
    assert follower.stdout.readline() == "got usr1\n"
    lpd.lpctl("kill", "db")
    # The follow ends by itself when the process ends.
    assert follower.wait(timeout=60) == 0
    assert follower.stdout.read() == ""


def test_logs_json_pieces(lpd):
    ensure_json(lpd, "db")
    lines = [json.loads(l) for l in lpd.lpctl("--json", "logs", "db").stdout.splitlines()]
    assert lines[0]["event"] == "proc.logs"
    assert lines[-1]["event"] == "proc.log_end" and lines[-1]["data"]["state"] == "ready"
    text = "".join(l["data"]["data"] for l in lines if l["event"] == "proc.log")
    assert "ready to accept connections" in text
    lpd.lpctl("kill", "db")


# -- surviving lpd ------------------------------------------------------------------


def test_lpd_sigkill_and_restart_readopts(lpd):
    result = ensure_json(lpd, "db", "--children", "1")
    child = children_in_log(log_text(lpd, "db"))[0]
    lpd.kill9()
    assert not gone(result["pid"])
    lpd.start()
    p = ps(lpd, all=False)["db"]
    assert p["state"] == "ready" and p["pid"] == result["pid"] and p["adopted"] is True
    assert "ready to accept connections" in log_text(lpd, "db")
    again = ensure_json(lpd, "db")
    assert again["reused"] is True and again["pid"] == result["pid"]
    killed = lpd.lpctl_json("kill", "db")
    assert killed["state"] == "killed" and killed["exit_status"]["known"] is False
    assert wait_gone(result["pid"]) and wait_gone(child)


def test_stopping_lpd_leaves_processes_running(lpd):
    result = ensure_json(lpd, "db")
    lpd.stop()
    assert not gone(result["pid"])
    lpd.start()
    assert ps(lpd)["db"]["state"] == "ready"
    lpd.lpctl("kill", "db")
    assert wait_gone(result["pid"])


def write_record(state_dir, name, pid, start_time, state="ready"):
    os.makedirs(os.path.join(state_dir, "procs"), exist_ok=True)
    record = {"name": name, "pid": pid, "start_time": start_time, "state": state, "owner": os.getuid(),
              "argv": ["sleep", "1000"], "cwd": "/", "pattern": "x",
              "log_path": os.path.join(state_dir, "logs", name + ".log"), "started_at": time.time()}
    with open(os.path.join(state_dir, "procs", name + ".json"), "w") as f:
        json.dump(record, f)


def start_time_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def test_reused_pid_is_lost_and_left_alone(lpd_unstarted):
    d = lpd_unstarted
    unrelated = subprocess.Popen(["sleep", "1000"])
    try:
        write_record(d.state_dir, "db", unrelated.pid, start_time_of(unrelated.pid) + 12345)
        d.start()
        p = ps(d)["db"]
        assert p["state"] == "lost"
        assert "db" not in ps(d, all=False)
        r = d.lpctl_json("kill", "db")
        assert r["was_running"] is False and r["state"] == "lost"
        d.stop()
        assert unrelated.poll() is None  # never signalled
    finally:
        unrelated.kill()
        unrelated.wait()


def test_recorded_process_that_ended_while_down_is_exited(lpd_unstarted):
    d = lpd_unstarted
    dead = subprocess.Popen(["true"])
    start = start_time_of(dead.pid)
    dead.wait()
    write_record(d.state_dir, "db", dead.pid, start)
    d.start()
    p = ps(d)["db"]
    assert p["state"] == "exited" and p["exit_status"]["known"] is False


def test_lpd_process_fixture_drives_a_real_server(lpd, tmp_path):
    test_file = tmp_path / "test_with_fixture.py"
    test_file.write_text(textwrap.dedent(f"""
        import socket
        import sys

        import pytest
        from xprocess import ProcessStarter

        HELPER = {HELPER!r}

        class Starter(ProcessStarter):
            pattern = r"ready to accept connections port=(?P<port>\\d+)"
            args = [sys.executable, HELPER, "--serve", "--delay", "0.2"]
            timeout = 60
            max_read_lines = 50
            terminate_on_interrupt = True
            env = {{"HELPER_ENV": "from-starter"}}

            def startup_check(self):
                return True

        @pytest.fixture(scope="session")
        def server(lpd_process):
            pid, logfile = lpd_process.ensure("fixture-server", Starter)
            yield pid, logfile
            info = lpd_process.getinfo("fixture-server")
            assert info.isrunning()
            assert info.terminate() == 1
            assert not info.isrunning()

        def port_of(logfile):
            for line in open(str(logfile)):
                if line.startswith("ready to accept connections port="):
                    return int(line.split("port=")[1].split()[0])

        def test_talks_to_the_server(server, lpd_process):
            pid, logfile = server
            info = lpd_process.getinfo("fixture-server")
            assert info.pid == pid and str(info.logpath) == str(logfile)
            assert "HELPER_ENV=from-starter" in open(str(logfile)).read()
            with socket.create_connection(("127.0.0.1", port_of(logfile))) as s:
                assert s.recv(100) == b"hello\\n"

        def test_second_ensure_reuses(server, lpd_process):
            pid, logfile = lpd_process.ensure("fixture-server", Starter)
            assert pid == server[0]

        def test_unknown_name_is_not_running(lpd_process):
            info = lpd_process.getinfo("never-started")
            assert info.pid is None and not info.isrunning() and info.terminate() == 0
    """))
    env = lpd.env(PYTHONPATH=os.path.join(SOURCE_DIR, "shim", "python"))
    env.pop("PYTEST_ADDOPTS", None)
    r = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                        "lpd_pytest.process_fixture", str(test_file)], capture_output=True, text=True, env=env,
                       timeout=300, cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 passed" in r.stdout
    assert ps(lpd)["fixture-server"]["state"] == "killed"
