"""Issue 3: live pause and resume through the daemon, with the pytest shim."""

import json
import os
import signal
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from lpd_harness import EventWaiter, LPCTL_BIN, finish, short_tempdir, start_pytest, write_tests

FAILING = """
def test_fails():
    assert 6 * 7 == 41, "wrong answer"
"""

CHECKPOINTS = """
from lpd_pytest import checkpoint

def test_true():
    d = checkpoint(task="say true", timeout=120)
    print("RESULT-TRUE", d.result, repr(d.reason))
    assert d.result is True and d.reason == "looks good"

def test_false():
    result, reason = checkpoint(task="say false", timeout=120)
    print("RESULT-FALSE", result, repr(reason))
    assert result is False and reason == "too slow"

def test_none():
    d = checkpoint(task="say none", timeout=120)
    print("RESULT-NONE", d.result, repr(d.reason))
    assert d.result is None and d.reason == ""
"""


def new_run_id():
    return "e2e-" + uuid.uuid4().hex[:10]


@pytest.fixture
def test_dir():
    d = short_tempdir()
    yield d
    subprocess.run(["rm", "-rf", d])


def test_failure_pause_resumed_with_reason_in_report(lpd, test_dir):
    write_tests(test_dir, "test_f.py", FAILING)
    run_id = new_run_id()
    events = EventWaiter(lpd, types=["pause."], run_id=run_id)
    proc = start_pytest(lpd, test_dir, "--pause-on-failure", "--junitxml=report.xml", run_id=run_id)
    created = events.wait("pause.created")
    assert created["kind"] == "failure"
    assert created["nodeid"] == "test_f.py::test_fails"
    assert "wrong answer" in created["original_failure"]
    assert created["pid"] == proc.pid
    # The test is blocked before teardown: pytest has not exited.
    assert proc.poll() is None
    out = lpd.lpctl("resume", created["pause_id"], "--failure-reason", "known flaky: ticket 42").stdout
    assert created["pause_id"] in out
    code, output = finish(proc)
    assert code == 1, output
    assert "external failure reason (lpd)" in output and "known flaky: ticket 42" in output
    failure = ET.parse(os.path.join(test_dir, "report.xml")).find(".//testcase/failure")
    assert failure is not None and "known flaky: ticket 42" in failure.text
    resumed = events.wait("pause.resumed")
    assert resumed["failure_reason"] == "known flaky: ticket 42"


def test_checkpoints_resumed_true_false_none(lpd, test_dir):
    write_tests(test_dir, "test_cp.py", CHECKPOINTS)
    run_id = new_run_id()
    events = EventWaiter(lpd, types=["pause.created"], run_id=run_id)
    proc = start_pytest(lpd, test_dir, "-s", run_id=run_id)
    answers = {"say true": ["--result", "true", "--reason", "looks good"],
               "say false": ["--result", "false", "--reason", "too slow"],
               "say none": ["--result", "none"]}
    for _ in range(3):
        pause = events.wait("pause.created")
        assert pause["kind"] == "checkpoint"
        lpd.lpctl("resume", pause["pause_id"], *answers[pause["task"]])
    code, output = finish(proc)
    assert code == 0, output
    assert "RESULT-TRUE True 'looks good'" in output
    assert "RESULT-FALSE False 'too slow'" in output
    assert "RESULT-NONE None ''" in output


def test_mock_mode_needs_no_daemon(test_dir):
    write_tests(test_dir, "test_mock.py", """
from lpd_pytest import checkpoint
def test_mock(live_pause):
    d = checkpoint(task="anything")
    assert d.result is False and d.reason == "Mock"
    assert live_pause.checkpoint("again").result is False
""")
    proc = start_pytest(None, test_dir, "--pause-checkpoint-mock", "false",
                        socket_path=os.path.join(test_dir, "no-daemon.sock"))
    code, output = finish(proc)
    assert code == 0, output


@pytest.mark.parametrize("value, expected", [("true", True), ("none", None)])
def test_mock_mode_returns_each_value_at_once(test_dir, value, expected):
    """`none` is a mocked result like the others (it once meant "no mock",
    and the checkpoint really paused, or raised without a daemon)."""
    write_tests(test_dir, "test_mock.py", f"""
from lpd_pytest import checkpoint
def test_mock():
    d = checkpoint(task="anything")
    assert d.result is {expected!r} and d.reason == "Mock", d
""")
    proc = start_pytest(None, test_dir, "--pause-checkpoint-mock", value,
                        socket_path=os.path.join(test_dir, "no-daemon.sock"))
    code, output = finish(proc)
    assert code == 0, output


def test_no_daemon_pause_on_failure_is_a_usage_error_naming_the_socket(test_dir):
    write_tests(test_dir, "test_f.py", FAILING)
    sock = os.path.join(test_dir, "no-daemon.sock")
    code, output = finish(start_pytest(None, test_dir, "--pause-on-failure", socket_path=sock))
    assert code == 4, output  # pytest's usage error
    assert sock in output and "--pause-on-failure needs lpd" in output


def test_no_daemon_checkpoint_raises_instead_of_hanging(test_dir):
    write_tests(test_dir, "test_cp.py", """
import pytest
from lpd_pytest import checkpoint, LpdUnavailable
def test_cp():
    with pytest.raises(LpdUnavailable, match="no lpd answering"):
        checkpoint(task="x", timeout=600)
""")
    code, output = finish(start_pytest(None, test_dir, socket_path=os.path.join(test_dir, "none.sock")), timeout=60)
    assert code == 0, output


def test_plain_pytest_without_options_or_daemon_is_untouched(test_dir):
    write_tests(test_dir, "test_ok.py", "def test_ok():\n    pass\n")
    code, output = finish(start_pytest(None, test_dir, socket_path=os.path.join(test_dir, "none.sock")))
    assert code == 0, output
    assert "lpd" not in output


def test_timeout_continues_with_nothing_appended(lpd, test_dir):
    write_tests(test_dir, "test_f.py", FAILING)
    run_id = new_run_id()
    events = EventWaiter(lpd, types=["pause."], run_id=run_id)
    proc = start_pytest(lpd, test_dir, "--pause-on-failure", "--pause-timeout", "0.5", run_id=run_id)
    created = events.wait("pause.created")
    timed_out = events.wait("pause.timed_out", pause_id=created["pause_id"])
    assert timed_out["status"] == "timed_out"
    code, output = finish(proc)
    assert code == 1
    assert "external failure reason" not in output
    result = lpd.lpctl("resume", created["pause_id"], "--failure-reason", "late", check=False)
    assert result.returncode == 1 and "timed out" in result.stderr


def test_killed_pytest_makes_its_pause_stale(lpd, test_dir):
    write_tests(test_dir, "test_f.py", FAILING)
    run_id = new_run_id()
    events = EventWaiter(lpd, types=["pause.", "run.ended"], run_id=run_id)
    proc = start_pytest(lpd, test_dir, "--pause-on-failure", run_id=run_id)
    created = events.wait("pause.created")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stale = events.wait("pause.stale", pause_id=created["pause_id"])
    assert stale["status"] == "stale"
    result = lpd.lpctl("resume", created["pause_id"], "--failure-reason", "x", check=False)
    assert result.returncode == 1
    assert "stale" in result.stderr and "[conflict]" in result.stderr
    listed = lpd.lpctl_json("ls", "-a", "--run-id", run_id)
    assert [p["status"] for p in listed] == ["stale"]
    assert lpd.lpctl_json("ls", "--run-id", run_id) == []


def test_watch_prints_a_pause_and_exits(lpd, test_dir):
    write_tests(test_dir, "test_cp.py", CHECKPOINTS.split("def test_false")[0])
    run_id = new_run_id()
    events = EventWaiter(lpd, types=["run.started", "pause.created"], run_id=run_id)
    proc = start_pytest(lpd, test_dir, run_id=run_id)
    events.wait("run.started")
    watch = lpd.lpctl("--json", "watch", "--run-id", run_id, timeout=60)
    pause = json.loads(watch.stdout)
    assert pause["run_id"] == run_id and pause["task"] == "say true" and pause["status"] == "pending"
    lpd.lpctl("resume", pause["pause_id"][:6], "--result", "true", "--reason", "looks good")
    code, output = finish(proc)
    assert code == 0, output


def test_watch_exits_at_once_when_the_run_ends(lpd, test_dir):
    write_tests(test_dir, "test_block.py", """
import sys
def test_block():
    sys.stdin.readline()  # blocks until the e2e test closes our stdin
""")
    run_id = new_run_id()
    events = EventWaiter(lpd, types=["run."], run_id=run_id)
    proc = start_pytest(lpd, test_dir, "-s", run_id=run_id, stdin=subprocess.PIPE)
    events.wait("run.started")
    watch = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "watch", "--run-id", run_id],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdin.close()
    code, output = finish(proc)
    assert code == 0, output
    events.wait("run.ended")
    out, err = watch.communicate(timeout=30)
    assert watch.returncode == 1
    assert "no longer active" in err
    # Asking about a run that already ended answers at once, too.
    again = lpd.lpctl("watch", "--run-id", run_id, check=False)
    assert again.returncode == 1 and "no longer active" in again.stderr


def test_watch_times_out_and_unknown_runs_are_errors(lpd, test_dir):
    write_tests(test_dir, "test_block.py", "import sys\ndef test_block():\n    sys.stdin.readline()\n")
    run_id = new_run_id()
    events = EventWaiter(lpd, types=["run.started"], run_id=run_id)
    proc = start_pytest(lpd, test_dir, "-s", run_id=run_id, stdin=subprocess.PIPE)
    events.wait("run.started")
    timed = lpd.lpctl("watch", "--run-id", run_id, "--timeout", "0.3", check=False)
    assert timed.returncode == 124 and "timeout" in timed.stderr
    proc.stdin.close()
    finish(proc)
    unknown = lpd.lpctl("watch", "--run-id", "no-such-run", check=False)
    assert unknown.returncode == 1 and "not_found" in unknown.stderr


def test_two_pytest_processes_paused_at_once_resumed_independently(lpd, test_dir):
    dirs = []
    procs = []
    events = EventWaiter(lpd, types=["pause.created"])
    for i in range(2):
        d = os.path.join(test_dir, f"p{i}")
        os.makedirs(d)
        write_tests(d, "test_f.py", FAILING)
        procs.append(start_pytest(lpd, d, "--pause-on-failure"))
        dirs.append(d)
    pauses = [events.wait("pause.created"), events.wait("pause.created")]
    assert len({p["run_id"] for p in pauses}) == 2  # each pytest got its own run
    by_pid = {p["pid"]: p for p in pauses}
    first, second = procs
    lpd.lpctl("resume", by_pid[second.pid]["pause_id"], "--failure-reason", "second reason")
    code, output = finish(second)
    assert code == 1 and "second reason" in output
    assert first.poll() is None  # still paused
    assert [p["pause_id"] for p in lpd.lpctl_json("ls")] == [by_pid[first.pid]["pause_id"]]
    lpd.lpctl("resume", by_pid[first.pid]["pause_id"], "--failure-reason", "first reason")
    code, output = finish(first)
    assert code == 1 and "first reason" in output and "second reason" not in output


def test_xdist_workers_paused_and_resumed_one_by_one(lpd, test_dir):
    write_tests(test_dir, "test_two.py", """
def test_a():
    assert False, "a broke"
def test_b():
    assert False, "b broke"
""")
    run_id = new_run_id()
    events = EventWaiter(lpd, types=["pause.created"], run_id=run_id)
    proc = start_pytest(lpd, test_dir, "-n", "2", "--pause-on-failure", run_id=run_id)
    pauses = [events.wait("pause.created"), events.wait("pause.created")]
    assert {p["worker_id"] for p in pauses} == {"gw0", "gw1"}
    assert {p["run_id"] for p in pauses} == {run_id}
    assert {p["nodeid"] for p in pauses} == {"test_two.py::test_a", "test_two.py::test_b"}
    run = [r for r in lpd.lpctl_json("runs") if r["run_id"] == run_id][0]
    assert {w["worker_id"] for w in run["workers"]} >= {"controller", "gw0", "gw1"}
    first, second = sorted(pauses, key=lambda p: p["nodeid"])
    lpd.lpctl("resume", first["pause_id"], "--failure-reason", "reason for a")
    assert [p["pause_id"] for p in lpd.lpctl_json("ls", "--run-id", run_id)] == [second["pause_id"]]
    assert proc.poll() is None
    lpd.lpctl("resume", second["pause_id"], "--failure-reason", "reason for b")
    code, output = finish(proc)
    assert code == 1, output
    assert "reason for a" in output and "reason for b" in output


def test_pause_survives_lpd_sigkill_and_restart(lpd, test_dir):
    write_tests(test_dir, "test_f.py", FAILING)
    run_id = new_run_id()
    events = EventWaiter(lpd, types=["pause.created"], run_id=run_id)
    proc = start_pytest(lpd, test_dir, "--pause-on-failure", run_id=run_id)
    created = events.wait("pause.created")
    events.close()
    lpd.kill9()
    lpd.start()
    listed = lpd.lpctl_json("ls")
    assert [p["pause_id"] for p in listed] == [created["pause_id"]]
    assert listed[0]["status"] == "pending" and listed[0]["nodeid"] == created["nodeid"]
    lpd.lpctl("resume", created["pause_id"], "--failure-reason", "after restart")
    code, output = finish(proc)
    assert code == 1, output
    assert "after restart" in output


def test_resume_rules_and_lookup(lpd, test_dir):
    write_tests(test_dir, "test_both.py", FAILING + """
from lpd_pytest import checkpoint
def test_cp():
    assert checkpoint(task="t", timeout=120).result is True
""")
    run_id = new_run_id()
    events = EventWaiter(lpd, types=["pause.created"], run_id=run_id)
    proc = start_pytest(lpd, test_dir, "--pause-on-failure", run_id=run_id)
    failure = events.wait("pause.created")
    bad = lpd.lpctl("resume", failure["pause_id"], "--result", "true", check=False)
    assert bad.returncode == 1 and "failure_reason only" in bad.stderr and "bad_request" in bad.stderr
    missing = lpd.lpctl("resume", "ffffffffffffffff-none", check=False)
    assert missing.returncode == 1 and "not_found" in missing.stderr
    pause_file = os.path.join(lpd.state_dir, "runs", run_id, "pauses", failure["pause_id"] + ".json")
    mirrored = json.load(open(pause_file))
    for field in ("pause_id", "run_id", "nodeid", "timeout", "original_failure", "status", "created_at", "pid",
                  "hostname", "cwd", "worker_id", "kind", "task"):
        assert field in mirrored, field
    lpd.lpctl("resume", pause_file)  # by path, no reason
    checkpoint = events.wait("pause.created")
    bad = lpd.lpctl("resume", checkpoint["pause_id"], "--failure-reason", "x", check=False)
    assert bad.returncode == 1 and "not failure_reason" in bad.stderr
    bad = lpd.lpctl("resume", checkpoint["pause_id"], check=False)
    assert bad.returncode == 1 and "true, false or none" in bad.stderr
    lpd.lpctl("resume", checkpoint["pause_id"], "--result", "true")
    again = lpd.lpctl("resume", checkpoint["pause_id"], "--result", "true", check=False)
    assert again.returncode == 1 and "already resumed" in again.stderr
    code, output = finish(proc)
    assert code == 1, output
    assert "1 failed, 1 passed" in output
    run_dir = os.path.join(lpd.state_dir, "runs", run_id)
    run_json = json.load(open(os.path.join(run_dir, "run.json")))
    assert run_json["run_id"] == run_id and run_json["status"] == "ended"
    journal = [json.loads(line)["event"] for line in open(os.path.join(run_dir, "events.jsonl"))]
    assert journal.count("pause.created") == 2 and journal.count("pause.resumed") == 2
    assert journal[0] == "run.started" and journal[-1] == "run.ended"


def test_fixtures_report_the_run_id(lpd, test_dir):
    write_tests(test_dir, "test_fx.py", """
def test_ids(live_pause, pause_run_id):
    assert live_pause.run_id == pause_run_id
    print("RUNID", pause_run_id)
""")
    run_id = new_run_id()
    code, output = finish(start_pytest(lpd, test_dir, "-s", run_id=run_id))
    assert code == 0, output
    assert f"RUNID {run_id}" in output
    assert f"lpd: run_id {run_id}" in output  # printed in the session header


def test_resume_of_another_users_pause_is_denied_with_bad_pause_ids(lpd):
    c = lpd.client()
    reply = c.request("pause.resume", pause_id="../../etc")
    assert reply["error"]["code"] == "not_found"
    reply = c.request("pause.request", run_id="nope", kind="failure")
    assert reply["error"]["code"] == "not_found"
    run = c.request("run.register", argv=["x"])["result"]["run_id"]
    reply = c.request("pause.request", run_id=run, pause_id="../escape")
    assert reply["error"]["code"] == "bad_request"
    reply = c.request("pause.request", run_id=run, kind="other")
    assert reply["error"]["code"] == "bad_request"
    reply = c.request("pause.request", run_id=run, timeout="soon")
    assert reply["error"]["code"] == "bad_request"
    reply = c.request("run.register", run_id="../../x")
    assert reply["error"]["code"] == "bad_request"
    assert lpd.ping()


def test_pause_list_comes_in_pages_that_lose_and_repeat_nothing(lpd, test_dir):
    """Any user can leave thousands of pauses behind: pause.list answers a
    page at a time, and lpctl ls -a reads every page."""
    write_tests(test_dir, "test_many_pauses.py", """
from lpd_pytest import checkpoint
def test_many():
    for i in range(7):
        assert checkpoint(task=f"t{i}", timeout=0.001).status == "timed_out"
""")
    code, output = finish(start_pytest(lpd, test_dir, "test_many_pauses.py"))
    assert code == 0, output
    client = lpd.client()
    seen, fields, pages = [], {"all": True, "limit": 3}, 0
    while True:
        reply = client.request("pause.list", **fields)
        assert reply["ok"], reply
        page = reply["result"]
        pages += 1
        seen += [p["pause_id"] for p in page["pauses"]]
        if page["next"] is None:
            break
        fields["after"] = page["next"]
    client.close()
    assert pages == 3 and len(seen) == 7 and len(set(seen)) == 7, (pages, seen)
    listed = lpd.lpctl_json("ls", "-a")
    assert sorted(p["pause_id"] for p in listed) == sorted(seen)
