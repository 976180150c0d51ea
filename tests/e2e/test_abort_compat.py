"""Issue 15 (h15abort): pytest-abort's users keep their environment and
commands under lpd. The command lines are the ones pytest-abort documents,
adapted only in paths: PYTEST_ABORT_CRASHED_TESTS_LOG gets lpd's crash records
(pytest-abort's field names) under `lpctl run` and for a plain `pytest` /
`pytest -n N` with lpd's plugin; the marker-file variables are accepted and
need no marker files; `pytest-abort-retry` retries until stable. Waits are
process exits and inotify events, never sleeps."""

import json
import os
import signal
import subprocess

from lpd_harness import LPCTL_BIN, PYTHON, finish, start_pytest, wait_until_in_directory, write_tests

BUILD_DIR = os.environ.get("LPD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build", "default"))
RETRY = os.path.join(BUILD_DIR, "pytest-abort-retry")
NO_SANITIZER_SIGNALS = "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0"
CRASH_FIELDS = ("nodeid", "reason", "crash_time", "duration")  # pytest-abort's names

SUITE = """
import ctypes, os
def test_a_ok():
    pass
def test_b_crash():
    ctypes.string_at(0)
def test_c_ok():
    pass
"""


def compat_env(lpd, **extra):
    env = lpd.env()
    for name in ("LPD_RUN_ID", "LPD_WORKER_ID", "LPD_PAUSE_ON_FAILURE", "PYTEST_ABORT_CRASHED_TESTS_LOG",
                 "PYTEST_ABORT_LAST_RUNNING_FILE", "PYTEST_ABORT_LAST_RUNNING_DIR"):
        env.pop(name, None)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), NO_SANITIZER_SIGNALS]))
    env.update(extra)
    return env


def read_jsonl(path):
    with open(path) as f:
        text = f.read()
    assert text == "" or text.endswith("\n"), f"torn last line in {path}: {text!r}"
    return [json.loads(line) for line in text.splitlines()]


def assert_crash_line(record, nodeid, run_id=None):
    for field in CRASH_FIELDS:
        assert field in record, record
    assert record["nodeid"] == nodeid, record
    assert record["signal_name"] == "SIGSEGV" and "SIGSEGV" in record["reason"], record
    assert isinstance(record["crash_time"], (int, float)) and record["crash_time"] > 0, record
    if run_id is not None:
        assert record["run_id"] == run_id, record


def crashes_of(lpd, run_id):
    return lpd.lpctl_json("crashes", "--run-id", run_id)


# -- PYTEST_ABORT_CRASHED_TESTS_LOG -------------------------------------------

def test_crash_log_from_the_environment_under_lpctl_run(lpd, work_dir):
    write_tests(work_dir, "test_mod.py", SUITE)
    log = os.path.join(work_dir, "logs", "crashed_tests.jsonl")
    os.mkdir(os.path.dirname(log))
    result = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--", PYTHON, "-m", "pytest",
                             "-p", "no:cacheprovider", "-q", "test_mod.py"], cwd=work_dir, capture_output=True,
                            text=True, timeout=240, env=compat_env(lpd, PYTEST_ABORT_CRASHED_TESTS_LOG=log))
    done = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    assert result.returncode == -signal.SIGSEGV, (result.stdout, result.stderr)
    # Written by lpd, as the user, before lpctl run returned.
    records = read_jsonl(log)
    assert len(records) == 1, records
    assert_crash_line(records[0], "test_mod.py::test_b_crash", done["run_id"])
    assert records[0] == {k: v for k, v in crashes_of(lpd, done["run_id"])[0].items() if k != "redacted"}


def test_crash_log_of_a_plain_pytest_without_xdist(lpd, work_dir):
    """The process that crashed cannot write: lpd records the crash, and the
    writer the plugin started appends it."""
    write_tests(work_dir, "test_mod.py", SUITE)
    log = os.path.join(work_dir, "logs", "crashed_tests.jsonl")  # its directory made too, as pytest-abort does
    proc = start_pytest(lpd, work_dir, "test_mod.py", env_extra={
        "PYTEST_ABORT_CRASHED_TESTS_LOG": log, "PYTEST_ABORT_LAST_RUNNING_FILE": os.path.join(work_dir, "last.json"),
        "ASAN_OPTIONS": NO_SANITIZER_SIGNALS})
    code, out = finish(proc)
    assert code == -signal.SIGSEGV, out
    assert os.path.exists(log), "the crash log is created when the session starts, as pytest-abort's is"
    assert wait_until_in_directory(os.path.dirname(log), lambda: os.path.getsize(log) > 0, timeout=60), out
    records = read_jsonl(log)
    assert len(records) == 1, records
    assert_crash_line(records[0], "test_mod.py::test_b_crash")
    assert not os.path.exists(os.path.join(work_dir, "last.json")), "lpd needs no marker file"


def test_crash_log_of_pytest_n_with_the_marker_directory(lpd, work_dir):
    """pytest-abort's xdist example: PYTEST_ABORT_LAST_RUNNING_DIR and the
    crash log set, `pytest -n N tests`. The log is complete when pytest
    exits (the controller waits for its writer); no marker files appear."""
    tests = os.path.join(work_dir, "tests")
    os.mkdir(tests)
    write_tests(tests, "test_mod.py", SUITE)
    last_running = os.path.join(work_dir, "last_running")
    os.mkdir(last_running)
    log = os.path.join(work_dir, "crashed_tests.jsonl")
    with open(log, "w") as f:
        f.write('{"nodeid": "tests/test_old.py::test_earlier", "reason": "an earlier run"}\n')
    proc = start_pytest(lpd, work_dir, "-n", "2", "tests", env_extra={
        "PYTEST_ABORT_LAST_RUNNING_DIR": last_running, "PYTEST_ABORT_CRASHED_TESTS_LOG": log,
        "ASAN_OPTIONS": NO_SANITIZER_SIGNALS})
    code, out = finish(proc)
    assert code == 1, out  # xdist: the crashed worker's test failed, the others passed
    assert "2 passed" in out, out
    records = read_jsonl(log)
    assert len(records) == 2, records  # appended after what was there
    assert records[0]["reason"] == "an earlier run"
    assert_crash_line(records[1], "tests/test_mod.py::test_b_crash")
    assert os.listdir(last_running) == [], "lpd needs no marker files"


def test_a_run_without_crashes_leaves_an_empty_crash_log(lpd, work_dir):
    write_tests(work_dir, "test_ok.py", "def test_ok():\n    pass\n")
    log = os.path.join(work_dir, "crashed_tests.jsonl")
    proc = start_pytest(lpd, work_dir, "test_ok.py", env_extra={
        "PYTEST_ABORT_CRASHED_TESTS_LOG": log, "PYTEST_ABORT_LAST_RUNNING_FILE": os.path.join(work_dir, "l.json")})
    code, out = finish(proc)
    assert code == 0, out
    assert os.path.getsize(log) == 0
    assert not os.path.exists(os.path.join(work_dir, "l.json"))


def run_with_crash_log(lpd, work_dir, log):
    """test_mod.py with PYTEST_ABORT_CRASHED_TESTS_LOG=log twice: a plain
    pytest (which must still run its tests and die in the SIGSEGV one) and
    `lpctl run`. Returns (the plain pytest's output, lpctl's CompletedProcess)."""
    proc = start_pytest(lpd, work_dir, "test_mod.py", env_extra={
        "PYTEST_ABORT_CRASHED_TESTS_LOG": log, "ASAN_OPTIONS": NO_SANITIZER_SIGNALS})
    code, out = finish(proc)
    assert code == -signal.SIGSEGV, out
    result = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", PYTHON, "-m", "pytest", "-q",
                             "test_mod.py"], cwd=work_dir, capture_output=True, text=True, timeout=240,
                            env=compat_env(lpd, PYTEST_ABORT_CRASHED_TESTS_LOG=log))
    return out, result

def test_a_symlinked_crash_log_is_never_written_through(lpd, work_dir):
    write_tests(work_dir, "test_mod.py", SUITE)
    target = os.path.join(work_dir, "precious.txt")
    with open(target, "w") as f:
        f.write("keep me\n")
    log = os.path.join(work_dir, "crashed_tests.jsonl")
    os.symlink(target, log)
    out, result = run_with_crash_log(lpd, work_dir, log)
    # A plain pytest: one warning, the tests run, the link's target untouched.
    assert "PYTEST_ABORT_CRASHED_TESTS_LOG" in out and "symbolic link" in out, out
    # Under lpctl run: refused before anything runs (lpd checks --crash-log as the user).
    assert result.returncode == 1 and "symbolic link" in result.stderr, (result.stdout, result.stderr)
    assert "collected" not in result.stdout
    with open(target) as f:
        assert f.read() == "keep me\n"
    assert os.path.islink(log)


def test_a_crash_log_owned_by_another_user_is_never_written(lpd, work_dir):
    """Someone else's file (say a world-writable /tmp/crashed_tests.jsonl
    made first by another user) would get this user's tracebacks and could
    feed lines to pytest-abort-postprocess: refused, by lpd under lpctl run
    and by the plain pytest's writer alike."""
    write_tests(work_dir, "test_mod.py", SUITE)
    log = os.path.join(work_dir, "crashed_tests.jsonl")
    with open(log, "w") as f:
        f.write("planted\n")
    os.chown(log, 65534, 65534)  # nobody's
    os.chmod(log, 0o666)
    out, result = run_with_crash_log(lpd, work_dir, log)
    assert "PYTEST_ABORT_CRASHED_TESTS_LOG" in out and "another user" in out, out
    assert result.returncode == 1 and "belongs to another user" in result.stderr, (result.stdout, result.stderr)
    with open(log) as f:
        assert f.read() == "planted\n"


# -- pytest-abort-retry ---------------------------------------------------------

ONCE = """
import ctypes, os
HERE = os.path.dirname(os.path.abspath(__file__))
def crash_once(name):
    marker = os.path.join(HERE, name + ".crashed")
    if not os.path.exists(marker):
        open(marker, "w").close()  # the test's own marker: it crashes only once
        ctypes.string_at(0)
def test_1_ok():
    pass
def test_2_crashes_once():
    crash_once("test_2")
def test_3_crashes_once_after_test_2():
    if os.path.exists(os.path.join(HERE, "test_2.crashed")):
        crash_once("test_3")
def test_4_ok():
    pass
"""


def run_retry(lpd, cwd, *args, log=None):
    env = compat_env(lpd)
    if log:
        env["PYTEST_ABORT_CRASHED_TESTS_LOG"] = log
    return subprocess.run([RETRY, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_retry_until_stable_with_the_seed_command_line(lpd, work_dir):
    """`pytest-abort-retry --max-runs 5 --clear-crash-log -- pytest -n 8
    --max-worker-restart=50 --tb=short --maxfail=20 tests examples`: the
    crashed tests are left out of each next run until a run brings no new
    crash (here 2 runs of the 5 allowed)."""
    for sub in ("tests", "examples"):
        os.mkdir(os.path.join(work_dir, sub))
    once = ONCE.split("def test_3_crashes_once_after_test_2")[0] + "def test_3_ok():\n    pass\ndef test_4_ok():\n    pass\n"
    write_tests(os.path.join(work_dir, "tests"), "test_mod.py", once)
    write_tests(os.path.join(work_dir, "examples"), "test_example.py", "def test_example():\n    pass\n")
    log = os.path.join(work_dir, "crashed_tests.jsonl")
    with open(log, "w") as f:
        f.write('{"nodeid": "tests/test_mod.py::test_1_ok", "reason": "stale line from yesterday"}\n')
    result = run_retry(lpd, work_dir, "--max-runs", "5", "--clear-crash-log", "--", "pytest", "-n", "8",
                       "--max-worker-restart=50", "--tb=short", "--maxfail=20", "tests", "examples", log=log)
    out = result.stdout + result.stderr
    # `pytest` became this interpreter's -m pytest, run by lpd with retries.
    assert f"{PYTHON} -m pytest -n 8" in result.stderr, out
    assert "--retry-crashed 4" in result.stderr, out
    records = read_jsonl(log)  # cleared first: the stale line is gone
    assert [r["nodeid"] for r in records] == ["tests/test_mod.py::test_2_crashes_once"], records
    assert_crash_line(records[0], "tests/test_mod.py::test_2_crashes_once")
    assert os.path.exists(os.path.join(work_dir, "tests", "test_2.crashed"))
    run_id = records[0]["run_id"]
    info = lpd.lpctl_json("crashes", "--run-id", run_id)
    assert [c["attempt"] for c in info] == [1], info
    # The second run left the crashed test out (in xdist's workers) and was
    # stable: no third run.
    assert out.count("test session starts") == 2, out
    assert "4 passed" in out.split("test session starts")[2], out
    # lpd's verdict: a test crashed and never passed again.
    assert result.returncode == 1, out
    assert "tests/test_mod.py::test_2_crashes_once" in result.stderr.split("crashed test(s)")[-1], out


def test_retry_runs_until_no_new_crash_and_stops_at_max_runs(lpd, work_dir):
    write_tests(work_dir, "test_mod.py", ONCE)
    log = os.path.join(work_dir, "crashed_tests.jsonl")
    # Without xdist each crash ends the run: run 1 test_2, run 2 test_3, run 3 stable.
    result = run_retry(lpd, work_dir, "--max-runs", "5", "--clear-crash-log", "--", "pytest", "test_mod.py",
                       log=log)
    out = result.stdout + result.stderr
    assert [r["nodeid"] for r in read_jsonl(log)] == ["test_mod.py::test_2_crashes_once",
                                                      "test_mod.py::test_3_crashes_once_after_test_2"], out
    assert [r["attempt"] for r in read_jsonl(log)] == [1, 2], out
    assert "2 passed, 2 deselected" in out, out
    assert result.returncode == 1, out

    # --max-runs 2: the second run's new crash is the last one tried.
    for marker in ("test_2.crashed", "test_3.crashed"):
        os.unlink(os.path.join(work_dir, marker))
    result = run_retry(lpd, work_dir, "--max-runs", "2", "--clear-crash-log", "--", "pytest", "test_mod.py",
                       log=log)
    out = result.stdout + result.stderr
    assert [r["attempt"] for r in read_jsonl(log)] == [1, 2], out
    assert "2 passed, 2 deselected" not in out, out
    assert result.returncode == -signal.SIGSEGV or result.returncode == 128 + signal.SIGSEGV, out


def test_retry_command_line_errors_and_a_clean_run(lpd, work_dir):
    result = run_retry(lpd, work_dir, "--max-runs", "3")
    assert result.returncode == 2 and "pytest command" in result.stderr, result.stderr
    result = run_retry(lpd, work_dir, "--max-runs", "0", "--", "pytest")
    assert result.returncode == 2, result.stderr
    write_tests(work_dir, "test_ok.py", "def test_ok():\n    pass\n")
    log = os.path.join(work_dir, "new", "dir", "crashed_tests.jsonl")
    result = run_retry(lpd, work_dir, "--", "pytest", "-q", "test_ok.py", log=log)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert os.path.getsize(log) == 0  # made (with its directory), and empty


def test_retry_of_a_script_that_runs_pytest_takes_runner(lpd, work_dir):
    """`pytest-abort-retry -- ./run_tests.sh`: lpd cannot tell a script runs
    pytest; the advice names an option the wrapper itself has, --runner,
    and with it the crashed test is left out of the second run."""
    write_tests(work_dir, "test_once.py", ONCE)
    script = os.path.join(work_dir, "run_tests.sh")
    with open(script, "w") as f:
        f.write(f"#!/bin/sh\nexec {PYTHON} -m pytest -q \"$@\"\n")
    os.chmod(script, 0o755)
    result = run_retry(lpd, work_dir, "--", "./run_tests.sh", "test_once.py")
    assert result.returncode != 0 and "--runner" in result.stderr, result.stdout + result.stderr
    assert "collected" not in result.stdout and "passed" not in result.stdout  # refused before running
    result = run_retry(lpd, work_dir, "--runner", "pytest", "--", "./run_tests.sh", "test_once.py")
    # test_2 crashes, then test_3 in the next run; the last run leaves both out.
    assert "test_once.py::test_3_crashes_once_after_test_2" in result.stdout + result.stderr, result.stderr
    assert "2 passed, 2 deselected" in result.stdout, result.stdout + result.stderr


def test_lpctl_run_makes_the_crash_logs_directory_as_pytest_abort_does(lpd, work_dir):
    write_tests(work_dir, "test_ok.py", "def test_ok():\n    pass\n")
    log = os.path.join("logs", "crashed.jsonl")  # relative, in a directory not made yet
    result = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", PYTHON, "-m", "pytest", "-q",
                             "test_ok.py"], cwd=work_dir, capture_output=True, text=True, timeout=240,
                            env=compat_env(lpd, PYTEST_ABORT_CRASHED_TESTS_LOG=log))
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.path.getsize(os.path.join(work_dir, log)) == 0
