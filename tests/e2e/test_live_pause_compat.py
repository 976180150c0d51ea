"""h15lp (issue 15): a pytest-live-pause user switches to lpd changing
nothing but paths. The seed's own command lines and test code, run against
a real lpd: `from pytest_live_pause import checkpoint`, the fixtures,
--pause-dir and its files, `pytest-live-pause resume/ls/watch`, command
files in commands/."""

import os
import shutil
import subprocess

import pytest

from lpd_harness import EventWaiter, PYTHON, SHIM_PYTHONPATH, killed_if_left_running, write_tests
from live_pause_compat import (COMMAND, compat_env, events_lines, live_pause, read_json, read_run_id,
                               start_checkpoint_session, start_compat_pytest, wait_for_event_line, wait_for_file,
                               write_command)

FAILING = """
def test_failure():
    assert 1 == 2, "boom"
"""

# The seed's checkpoint examples, as a user has them.
CHECKPOINTS = """
from pytest_live_pause import checkpoint

def test_example():
    decision = checkpoint(task="Approve the external step", timeout=300)
    if decision.result is False:
        raise AssertionError(decision.reason or "checkpoint failed")

def test_fixture_example(live_pause, pause_run_id):
    assert live_pause.run_id == pause_run_id
    decision = live_pause.checkpoint(task="Approve the external step", timeout=300)
    assert decision.result is True
"""

PAUSE_FILE_FIELDS = {"pause_id", "run_id", "nodeid", "timeout", "original_failure", "status", "created_at", "pid",
                     "hostname", "cwd"}


def run_dir_of(pause_dir, run_id):
    return os.path.join(pause_dir, "runs", run_id)


def test_failure_pause_files_and_resume_by_pause_file_path(lpd, work_dir):
    write_tests(work_dir, "test_sample.py", FAILING)
    pause_dir = os.path.join(work_dir, "pauses")
    waiter = EventWaiter(lpd, types=["pause."])
    proc = start_compat_pytest(lpd, work_dir, "--pause-on-failure", "--pause-dir", pause_dir, "--pause-timeout", "300")
    seen = []
    run_id = read_run_id(proc, seen)
    run_dir = run_dir_of(pause_dir, run_id)
    created = waiter.wait("pause.created", run_id=run_id)
    pause_file = os.path.join(run_dir, "pauses", created["pause_id"] + ".json")
    record = wait_for_file(pause_file)
    assert PAUSE_FILE_FIELDS <= set(record), record
    assert "announcement" not in record  # the terminal's lines belong to the event, not to the pause
    assert record["pause_id"] == created["pause_id"] and record["run_id"] == run_id
    assert record["nodeid"] == "test_sample.py::test_failure"
    assert record["timeout"] == 300.0 and record["status"] == "pending"
    assert record["original_failure"].startswith("AssertionError: boom")
    assert record["pid"] == proc.pid and record["cwd"] == work_dir and record["hostname"]
    run = read_json(os.path.join(run_dir, "run.json"))
    assert run["run_id"] == run_id and run["pid"] == proc.pid and run["cwd"] == work_dir and run["hostname"]
    assert os.path.isdir(os.path.join(run_dir, "commands"))
    assert wait_for_event_line(run_dir, "pause.created", pause_id=created["pause_id"])

    # The seed's resume by pause file path.
    result = live_pause(lpd, "resume", pause_file, "--failure-reason", "manually confirmed")
    assert result.returncode == 0, result.stdout + result.stderr
    assert created["pause_id"] in result.stdout
    rest, _ = proc.communicate(timeout=120)
    out = "".join(seen) + rest
    assert proc.returncode == 1, out
    assert "manually confirmed" in out
    record = wait_for_file(pause_file, lambda r: r["status"] == "resumed")
    assert record["failure_reason"] == "manually confirmed"
    assert wait_for_event_line(run_dir, "pause.resumed", pause_id=created["pause_id"])
    assert wait_for_file(os.path.join(run_dir, "run.json"), lambda r: r["status"] == "ended")
    waiter.close()


def test_checkpoints_by_import_and_fixture_resumed_by_id(lpd, work_dir):
    pause_dir = os.path.join(work_dir, "pauses")
    waiter, proc, seen, run_id = start_checkpoint_session(lpd, work_dir, CHECKPOINTS, pause_dir)
    for nodeid in ("test_cp.py::test_example", "test_cp.py::test_fixture_example"):
        created = waiter.wait("pause.created", run_id=run_id, nodeid=nodeid)
        assert created["kind"] == "checkpoint"
        pause_id = created["pause_id"]
        record = wait_for_file(os.path.join(run_dir_of(pause_dir, run_id), "pauses", pause_id + ".json"))
        assert record["task"] == "Approve the external step"
        # Non-failure pauses must not receive --failure-reason: refused, and the pause waits on.
        refused = live_pause(lpd, "resume", pause_id, "--failure-reason", "manually confirmed")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "--failure-reason" in refused.stderr and "checkpoint" in refused.stderr
        pending = live_pause(lpd, "ls")
        assert pause_id in pending.stdout and "pending" in pending.stdout
        # The seed's checkpoint resume, by pause_id.
        result = live_pause(lpd, "resume", pause_id, "--result", "true", "--reason", "approved")
        assert result.returncode == 0, result.stdout + result.stderr
        resumed = waiter.wait("pause.resumed", pause_id=pause_id)
        assert resumed["result"] is True and resumed["reason"] == "approved"
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, "".join(seen) + rest
    waiter.close()


def test_command_files_good_and_bad(lpd, work_dir):
    write_tests(work_dir, "test_both.py", FAILING + CHECKPOINTS.split("def test_fixture_example")[0])
    pause_dir = os.path.join(work_dir, "pauses")
    waiter = EventWaiter(lpd, types=["pause."])
    proc = start_compat_pytest(lpd, work_dir, "--pause-on-failure", "--pause-dir", pause_dir)
    seen = []
    run_id = read_run_id(proc, seen)
    run_dir = run_dir_of(pause_dir, run_id)
    commands = os.path.join(run_dir, "commands")

    failure = waiter.wait("pause.created", run_id=run_id, kind="failure")["pause_id"]
    # A checkpoint's decision for a failure pause, and a body that is not JSON: each an error line, still pending.
    write_command(commands, failure, {"result": True, "reason": "approved"})
    line = wait_for_event_line(run_dir, "pause.command_rejected", pause_id=failure)
    assert "failure pause" in line["message"] and line["file"].endswith(f"commands/{failure}.resume.json")
    write_command(commands, failure, "{not json")
    wait_for_event_line(run_dir, "pause.command_rejected", pause_id=failure, message=line["file"] + ": not valid JSON")
    assert failure in live_pause(lpd, "ls").stdout
    write_command(commands, failure, {"failure_reason": "manually confirmed"})
    assert waiter.wait("pause.resumed", pause_id=failure)["failure_reason"] == "manually confirmed"

    checkpoint = waiter.wait("pause.created", run_id=run_id, kind="checkpoint")["pause_id"]
    write_command(commands, checkpoint, {"failure_reason": "manually confirmed"})  # refused on a checkpoint
    wait_for_event_line(run_dir, "pause.command_rejected", pause_id=checkpoint)
    write_command(commands, checkpoint, {"result": "yes"})
    wait_for_event_line(run_dir, "pause.command_rejected", pause_id=checkpoint,
                        message=f"{commands}/{checkpoint}.resume.json: \"result\" must be true, false or null (none)")
    assert checkpoint in live_pause(lpd, "ls").stdout
    write_command(commands, checkpoint, {"result": True, "reason": "approved"})
    resumed = waiter.wait("pause.resumed", pause_id=checkpoint)
    assert resumed["result"] is True and resumed["reason"] == "approved"
    rest, _ = proc.communicate(timeout=120)
    out = "".join(seen) + rest
    assert "manually confirmed" in out and "1 failed, 1 passed" in out, out
    # An applied command is consumed; lpd wrote every line whole.
    assert not os.path.exists(os.path.join(commands, f"{checkpoint}.resume.json"))
    assert all("event" in line for line in events_lines(run_dir))
    waiter.close()


def test_ls_all_shows_stale_and_resume_refuses_it(lpd, work_dir):
    write_tests(work_dir, "test_sample.py", FAILING)
    pause_dir = os.path.join(work_dir, "pauses")
    waiter = EventWaiter(lpd, types=["pause."])
    proc = start_compat_pytest(lpd, work_dir, "--pause-on-failure", "--pause-dir", pause_dir)
    run_id = read_run_id(proc, [])
    pause_id = waiter.wait("pause.created", run_id=run_id)["pause_id"]
    proc.kill()  # killed while paused: its pause file stays, stale
    proc.communicate(timeout=60)
    waiter.wait("pause.stale", pause_id=pause_id)
    pause_file = os.path.join(run_dir_of(pause_dir, run_id), "pauses", pause_id + ".json")
    assert wait_for_file(pause_file, lambda r: r["status"] == "stale")
    assert pause_id not in live_pause(lpd, "ls").stdout
    listing = live_pause(lpd, "ls", "-a", "--pause-dir", pause_dir)
    assert listing.returncode == 0
    row = next(line for line in listing.stdout.splitlines() if pause_id in line)
    assert " stale " in row and "test_sample.py::test_failure" in row
    refused = live_pause(lpd, "resume", pause_file, "--failure-reason", "too late")
    assert refused.returncode == 1 and "stale" in refused.stderr, refused.stderr
    assert not os.listdir(os.path.join(run_dir_of(pause_dir, run_id), "commands"))
    waiter.close()


def test_watch_waits_for_the_pause_and_knows_when_the_run_ends(lpd, work_dir):
    write_tests(work_dir, "test_sample.py", FAILING)
    waiter = EventWaiter(lpd, types=["pause.", "run."])
    proc = start_compat_pytest(lpd, work_dir, "--pause-on-failure", "--pause-dir", os.path.join(work_dir, "p"),
                               "--pause-timeout", "300")
    run_id = read_run_id(proc, [])
    watch = subprocess.Popen([COMMAND, "watch", "--run-id", run_id, "--timeout", "120", "--interval", "1"],
                             env=lpd.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = watch.communicate(timeout=150)
    assert watch.returncode == 0, out + err
    pause_id = waiter.wait("pause.created", run_id=run_id)["pause_id"]
    assert f"pause_id: {pause_id}" in out and "test_sample.py::test_failure" in out
    assert f"pytest-live-pause resume {pause_id}" in out
    assert live_pause(lpd, "resume", pause_id).returncode == 0
    proc.communicate(timeout=120)
    waiter.wait("run.ended", run_id=run_id)
    ended = live_pause(lpd, "watch", "--run-id", run_id, "--timeout", "30")
    assert ended.returncode == 1 and "no longer active" in ended.stderr, ended.stderr
    waiter.close()


def test_watch_timeout(lpd, work_dir):
    write_tests(work_dir, "test_wait.py", "import sys\ndef test_wait():\n    sys.stdin.read()\n")
    proc = subprocess.Popen([PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-p", "pytest_live_pause", "-q", "-s",
                             "--pause-dir", os.path.join(work_dir, "p")], cwd=work_dir, env=compat_env(lpd),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        run_id = read_run_id(proc, [])
        result = live_pause(lpd, "watch", "--run-id", run_id, "--timeout", "0.5")
        assert result.returncode == 124, result.stdout + result.stderr
        assert "no pause" in result.stderr
    finally:
        proc.communicate(input="", timeout=120)


def test_no_daemon_says_how_to_start_one(work_dir):
    env = dict(os.environ, LPD_SOCKET=os.path.join(work_dir, "none.sock"))
    for args in (["ls"], ["resume", "abc", "--failure-reason", "x"], ["watch", "--run-id", "r"]):
        result = subprocess.run([COMMAND, *args], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result
        assert "no lpd answering" in result.stderr and "lpd start" in result.stderr


@pytest.mark.parametrize("value, expected", [("false", False), ("true", True), ("none", None)])
def test_the_seeds_checkpoint_mock_needs_no_daemon(work_dir, value, expected):
    """The seed's `pytest --pause-checkpoint-mock false`, with its import:
    every checkpoint returns the value at once, reason "Mock"."""
    write_tests(work_dir, "test_mocked.py", f"""
from pytest_live_pause import checkpoint

def test_mocked():
    decision = checkpoint(task="approve", timeout=300)
    assert decision.result is {expected!r} and decision.reason == "Mock", decision
""")
    env = dict(os.environ, LPD_SOCKET=os.path.join(work_dir, "none.sock"), PYTHONPATH=SHIM_PYTHONPATH)
    env.pop("PYTEST_PLUGINS", None)
    proc = subprocess.run([PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-p", "pytest_live_pause", "-q",
                           "--pause-checkpoint-mock", value, "test_mocked.py"],
                          cwd=work_dir, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr


PLUGIN_COUNT = """
import lpd_pytest

def test_registered_once(request):
    pm = request.config.pluginmanager
    names = [name for name, plugin in pm.list_name_plugin() if plugin is lpd_pytest]
    assert len(names) == 1, names
    assert pm.hasplugin("pytest_live_pause")
"""


@pytest.mark.parametrize("how", ["-p", "PYTEST_PLUGINS", "-p and PYTEST_PLUGINS=lpd_pytest", "entry point"])
def test_the_plugin_is_registered_once(lpd, work_dir, how):
    write_tests(work_dir, "test_count.py", PLUGIN_COUNT)
    env = compat_env(lpd)
    plugin_args = ("-p", "pytest_live_pause")
    if how == "PYTEST_PLUGINS":
        env["PYTEST_PLUGINS"] = "pytest_live_pause"
        plugin_args = ()
    elif how == "-p and PYTEST_PLUGINS=lpd_pytest":
        env["PYTEST_PLUGINS"] = "lpd_pytest"
    elif how == "entry point":
        # lpd installed: lpd_pytest's pytest11 entry point, as shim/python/CMakeLists.txt installs it.
        site = os.path.join(work_dir, "site")
        dist = os.path.join(site, "lpd_pytest-0.1.0.dist-info")
        os.makedirs(dist)
        with open(os.path.join(dist, "METADATA"), "w") as f:
            f.write("Metadata-Version: 2.1\nName: lpd_pytest\nVersion: 0.1.0\n")
        shutil.copy(os.path.join(os.path.dirname(__file__), "..", "..", "shim", "python", "packaging",
                                 "entry_points.txt"), dist)
        env["PYTHONPATH"] = site + os.pathsep + SHIM_PYTHONPATH
    proc = start_compat_pytest(lpd, work_dir, "--pause-on-failure", "--pause-dir", os.path.join(work_dir, "p"),
                               env=env, plugin_args=plugin_args)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "1 passed" in out and out.count("live pause: run_id ") == 1, out


def test_default_pause_dir_and_header_line(lpd, work_dir):
    write_tests(work_dir, "test_sample.py", FAILING)
    waiter = EventWaiter(lpd, types=["pause."])
    proc = start_compat_pytest(lpd, work_dir, "--pause-on-failure")
    seen = []
    run_id = read_run_id(proc, seen)
    run_dir = os.path.join(f"/tmp/pytest-live-pause-{os.geteuid()}", "runs", run_id)
    try:
        with killed_if_left_running(proc):
            assert f"pause files in {run_dir}" in seen[-1]
            pause_id = waiter.wait("pause.created", run_id=run_id)["pause_id"]
            record = wait_for_file(os.path.join(run_dir, "pauses", pause_id + ".json"))
            assert record["nodeid"] == "test_sample.py::test_failure"
            st = os.lstat(os.path.dirname(os.path.dirname(run_dir)))
            assert st.st_uid == os.geteuid() and st.st_mode & 0o077 == 0
            # The seed's resume by pause_id, no --pause-dir: the default one.
            assert live_pause(lpd, "resume", pause_id, "--failure-reason", "manually confirmed").returncode == 0
            out = "".join(seen) + proc.communicate(timeout=120)[0]
            assert "manually confirmed" in out
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    waiter.close()


def test_lpd_pytest_alone_writes_no_pause_dir(lpd, work_dir):
    """lpd's own name without --pause-dir keeps everything in lpd's state directory."""
    write_tests(work_dir, "test_ok.py", "def test_ok():\n    pass\n")
    proc = start_compat_pytest(lpd, work_dir, plugin_args=("-p", "lpd_pytest"))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "live pause: run_id" not in out, out


def test_xdist_workers_pauses_are_in_the_controllers_pause_dir(lpd, work_dir):
    write_tests(work_dir, "test_x.py", FAILING + "\ndef test_other():\n    assert False, 'two'\n")
    pause_dir = os.path.join(work_dir, "pauses")
    waiter = EventWaiter(lpd, types=["pause."])
    proc = start_compat_pytest(lpd, work_dir, "-n", "2", "--pause-on-failure", "--pause-dir", pause_dir)
    seen = []
    run_id = read_run_id(proc, seen)
    run_dir = run_dir_of(pause_dir, run_id)
    for _ in range(2):
        created = waiter.wait("pause.created", run_id=run_id)
        record = wait_for_file(os.path.join(run_dir, "pauses", created["pause_id"] + ".json"))
        assert record["worker_id"] in ("gw0", "gw1") and record["pid"] != proc.pid
        write_command(os.path.join(run_dir, "commands"), created["pause_id"], {"failure_reason": "seen by a human"})
        waiter.wait("pause.resumed", pause_id=created["pause_id"])
    out = "".join(seen) + proc.communicate(timeout=120)[0]
    assert proc.returncode == 1 and out.count("seen by a human") >= 2, out
    waiter.close()
