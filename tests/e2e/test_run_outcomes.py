"""Issue 12 (job): every outcome `lpctl run` reports is what happened, for any
command: commands without a shim (sh, make, a GoogleTest binary without the
listener), runner adapters for retries, interrupted tests, crashes outside
tests and flaky crashes re-run alone (a crash never recorded twice across an
lpd restart: test_history_crashes.py). Asserts on JUnit, the crash log, events, lpctl's console and exit
code. Waits are events (subscriptions, FIFOs, process exits), never sleeps."""

import json
import os
import signal
import subprocess
import xml.etree.ElementTree as ET

import pytest

from lpd_harness import LPCTL_BIN, PYTHON, EventWaiter, write_tests

BUILD_DIR = os.environ.get("LPD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build", "default"))
GTEST_SAMPLE = os.path.join(BUILD_DIR, "tests", "native", "gtest_sample")
GTEST_PLAIN = os.path.join(BUILD_DIR, "tests", "gtest_plain")
NO_SANITIZER_SIGNALS = "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0"



def run_env(lpd):
    env = lpd.env()
    for name in ("LPD_RUN_ID", "LPD_WORKER_ID", "LPD_PAUSE_ON_FAILURE", "GTEST_FILTER"):
        env.pop(name, None)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), NO_SANITIZER_SIGNALS]))
    return env


def lpctl_run(lpd, cwd, *args, timeout=240):
    """`lpctl --json run ARGS`: (returncode, stdout, stderr, run.done)."""
    result = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", *args], cwd=cwd,
                            capture_output=True, text=True, timeout=timeout, env=run_env(lpd))
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    done = json.loads(lines[-1]) if lines else None
    return result.returncode, result.stdout, result.stderr, done


def pytest_cmd(*args):
    return ["--", PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]


def crashes_of(lpd, run_id):
    return lpd.lpctl_json("crashes", "--run-id", run_id)


def events_of(lpd, run_id, kind):
    out = lpd.lpctl("--json", "events", "--run-id", run_id, "--type", kind).stdout.splitlines()
    return [json.loads(line)["data"] for line in out]


def junit_cases(path):
    suite = ET.parse(path).getroot().find("testsuite")
    return suite, list(suite.iter("testcase"))


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# -- commands without a shim -------------------------------------------------

def test_a_crashing_command_without_a_shim_is_one_testcase_a_crash_record_and_a_crash_log_line(lpd, work_dir):
    junit = os.path.join(work_dir, "report.xml")
    crash_log = os.path.join(work_dir, "crashes.log")
    code, out, err, done = lpctl_run(lpd, work_dir, "--junit", junit, "--crash-log", crash_log, "--",
                                     "sh", "-c", "echo SHELL-RAN; kill -SEGV $$")
    assert code == -signal.SIGSEGV, (out, err)  # lpctl ends by the command's own signal
    assert "SHELL-RAN" in out
    assert "no test events arrived" in err, err
    assert done["tests_reported"] is False and done["signal"] == signal.SIGSEGV
    suite, cases = junit_cases(junit)
    assert len(cases) == 1, ET.tostring(suite)
    error = cases[0].find("error")
    assert error is not None and "SIGSEGV" in (error.get("message") or "") + (error.text or ""), ET.tostring(suite)
    assert suite.get("errors") == "1" and suite.get("tests") == "1"
    crashes = crashes_of(lpd, done["run_id"])
    assert len(crashes) == 1 and crashes[0]["signal_name"] == "SIGSEGV" and crashes[0]["where"] == "command"
    logged = read_jsonl(crash_log)  # --crash-log was created and holds the same record
    assert len(logged) == 1 and logged[0]["signal"] == signal.SIGSEGV and logged[0]["run_id"] == done["run_id"]
    assert [c["signal"] for c in events_of(lpd, done["run_id"], "crash")] == [signal.SIGSEGV]


def test_a_failing_command_without_a_shim_carries_its_exit_code(lpd, work_dir):
    junit = os.path.join(work_dir, "report.xml")
    crash_log = os.path.join(work_dir, "crashes.log")
    code, out, err, done = lpctl_run(lpd, work_dir, "--junit", junit, "--crash-log", crash_log, "--",
                                     "sh", "-c", "exit 3")
    assert code == 3, (out, err)
    assert "no test events arrived" in err
    suite, cases = junit_cases(junit)
    assert len(cases) == 1
    outcome = cases[0].find("error") if cases[0].find("error") is not None else cases[0].find("failure")
    assert outcome is not None and "exited with code 3" in (outcome.get("message") or ""), ET.tostring(suite)
    assert os.path.exists(crash_log) and read_jsonl(crash_log) == []  # an exit is no crash
    assert crashes_of(lpd, done["run_id"]) == []
    finished = events_of(lpd, done["run_id"], "test.finish")
    assert [f["outcome"] for f in finished] == ["error"]


def test_a_passing_command_without_a_shim_passes(lpd, work_dir):
    junit = os.path.join(work_dir, "report.xml")
    code, out, err, done = lpctl_run(lpd, work_dir, "--junit", junit, "--", "true")
    assert code == 0, (out, err)
    suite, cases = junit_cases(junit)
    assert len(cases) == 1 and list(cases[0]) == [] and suite.get("errors") == "0", ET.tostring(suite)


def test_make_with_retry_crashed_is_refused_up_front(lpd, work_dir):
    write_tests(work_dir, "Makefile", "check:\n\t@echo MAKE-RAN\n")
    result = lpd.lpctl("run", "--retry-crashed", "2", "--", "make", "check", check=False, env=run_env(lpd))
    assert result.returncode == 1, result
    for word in ("bad_request", "pytest", "gtest", "catch2", "--runner"):
        assert word in result.stderr, result.stderr
    assert "MAKE-RAN" not in result.stdout
    # Nothing was started: no run, no job.
    assert not any(r.get("supervised") for r in lpd.lpctl_json("runs", "-a"))
    again = lpd.lpctl("run", "--rerun-crashed", "1", "--", "make", "check", check=False, env=run_env(lpd))
    assert again.returncode == 1 and "bad_request" in again.stderr


def test_pause_on_failure_reaches_commands_through_the_environment_never_argv(lpd, work_dir):
    code, out, err, done = lpctl_run(lpd, work_dir, "--pause-on-failure", "--", "sh", "-c",
                                     'echo "ARGS=[$*]"; echo "PAUSE=$LPD_PAUSE_ON_FAILURE"', "sh")
    assert code == 0, (out, err)
    assert "ARGS=[]" in out and "PAUSE=1" in out


def test_a_gtest_binary_without_the_listener_crashing_is_reported_as_the_command(lpd, work_dir):
    junit = os.path.join(work_dir, "report.xml")
    crash_log = os.path.join(work_dir, "crashes.log")
    # --gtest_filter makes it a GoogleTest binary (runner gtest), so --retry-crashed is accepted;
    # with no test events there is no test to leave out: no retry.
    code, out, err, done = lpctl_run(lpd, work_dir, "--retry-crashed", "2", "--junit", junit, "--crash-log",
                                     crash_log, "--", GTEST_PLAIN, "--gtest_filter=Plain.*")
    assert code == -signal.SIGSEGV, (out, err)
    assert done["attempts"] == 1 and done["runner"] == "gtest"
    assert "no test events arrived" in err
    suite, cases = junit_cases(junit)
    assert len(cases) == 1 and "SIGSEGV" in ET.tostring(suite).decode()
    assert [c["signal_name"] for c in read_jsonl(crash_log)] == ["SIGSEGV"]


# -- runner adapters --------------------------------------------------------

def test_gtest_retry_leaves_each_crashed_test_out_and_junit_lists_every_test(lpd, work_dir):
    junit = os.path.join(work_dir, "report.xml")
    events = EventWaiter(lpd, types=["test.start", "job"])
    code, out, err, done = lpctl_run(lpd, work_dir, "--retry-crashed", "3", "--junit", junit, "--",
                                     GTEST_SAMPLE, "--gtest_filter=Sample.*:CrashTest.*")
    # Attempt 1 dies in CrashTest.NullDeref, attempt 2 (without it) in CrashTest.Abort,
    # attempt 3 (without both) runs the rest: no test crashed twice.
    assert done["attempts"] == 3, (out, err)
    crashes = crashes_of(lpd, done["run_id"])
    assert sorted(c["nodeid"] for c in crashes) == ["CrashTest.Abort", "CrashTest.NullDeref"], crashes
    assert code == 1, (out, err)  # Sample.Fails failed, and two tests crashed
    # GoogleTest prints the filter it was given: the user's, merged with the exclusions.
    assert "Google Test filter = Sample.*:CrashTest.*-CrashTest.NullDeref\n" in out, out
    assert "Google Test filter = Sample.*:CrashTest.*-CrashTest.NullDeref:CrashTest.Abort\n" in out, out
    jobs = [e["payload"]["text"] for e in events_of(lpd, done["run_id"], "job")]
    assert any("re-running without 2 crashed test(s), attempt 3" in t for t in jobs), jobs
    started = [e["nodeid"] for e in events_of(lpd, done["run_id"], "test.start")]
    assert started.count("CrashTest.NullDeref") == 1 and started.count("CrashTest.Abort") == 1, started
    suite, cases = junit_cases(junit)
    names = sorted(c.get("classname", "") + "." + c.get("name") for c in cases)
    assert len(cases) == 5, names
    for name in ("Passes", "AlsoPasses", "Fails", "NullDeref", "Abort"):
        assert any(n.endswith(name) for n in names), names
    events.close()


def test_catch2_retry_excludes_each_crashed_test_from_every_filter_of_the_spec(lpd, work_dir):
    junit = os.path.join(work_dir, "report.xml")
    catch2 = os.path.join(BUILD_DIR, "tests", "native", "catch2_sample")
    # Catch2 cannot be told from its argv: without --runner the retry is refused.
    refused = lpd.lpctl("run", "--retry-crashed", "2", "--", catch2, check=False, env=run_env(lpd))
    assert refused.returncode == 1 and "--runner" in refused.stderr
    code, out, err, done = lpctl_run(lpd, work_dir, "--runner", "catch2", "--retry-crashed", "2", "--junit", junit,
                                     "--", catch2, "CatchPasses,CatchNullDeref,CatchAbort")
    assert done["attempts"] == 3 and done["runner"] == "catch2", (out, err)
    crashes = crashes_of(lpd, done["run_id"])
    assert sorted(c["nodeid"] for c in crashes) == ["CatchAbort", "CatchNullDeref"], crashes
    started = [e["nodeid"] for e in events_of(lpd, done["run_id"], "test.start")]
    assert started.count("CatchNullDeref") == 1 and started.count("CatchAbort") == 1, started
    assert started.count("CatchPasses") == 3, started  # each OR-ed filter kept its own test
    assert code == 1, (out, err)  # the last attempt passed; the crashed tests still fail the run
    _, cases = junit_cases(junit)
    assert sorted(c.get("name") for c in cases) == ["CatchAbort", "CatchNullDeref", "CatchPasses"], \
        ET.tostring(ET.parse(junit).getroot())


# -- interrupted ------------------------------------------------------------

@pytest.mark.parametrize("ignores_sigint", [False, True], ids=["sigint", "killed-after-grace"])
def test_a_test_cut_short_by_lpctl_stop_is_interrupted_never_passed_nor_crashed(lpd, work_dir, ignores_sigint):
    fifo = os.path.join(work_dir, "never")
    os.mkfifo(fifo)
    write_tests(work_dir, "test_block.py", f"""
import signal
def test_first():
    pass
def test_block():
    if {ignores_sigint}:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    open({fifo!r}).read()
""")
    junit = os.path.join(work_dir, "report.xml")
    events = EventWaiter(lpd, types=["test.start"])
    proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--junit", junit,
                             *pytest_cmd("test_block.py")], cwd=work_dir, env=run_env(lpd),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = events.wait("test.start", nodeid="test_block.py::test_block")
    run_id = started["run_id"]
    lpd.lpctl("stop", run_id, "--grace", "0.5")
    out, err = proc.communicate(timeout=120)
    done = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    finished = {f["nodeid"]: f for f in events_of(lpd, run_id, "test.finish")}
    assert finished["test_block.py::test_block"]["outcome"] == "interrupted", finished
    assert finished["test_block.py::test_block"]["phase"] == "call"
    assert finished["test_block.py::test_first"]["outcome"] == "passed"
    assert crashes_of(lpd, run_id) == [], "a stop is not a crash"
    assert proc.returncode != 0 and done["returncode"] != 0, (out, err)
    if ignores_sigint:
        assert proc.returncode == -signal.SIGKILL, err
    _, cases = junit_cases(junit)
    block = [c for c in cases if c.get("name") == "test_block"]
    assert block and block[0].find("error") is not None and "interrupted" in block[0].find("error").get("message")
    events.close()


def test_a_stopped_command_without_a_shim_is_interrupted_even_if_it_exits_0(lpd, work_dir):
    # Its trap turns the stop's SIGINT into a clean exit 0: it still did not
    # get to finish, so it is interrupted and the run fails.
    ready = os.path.join(work_dir, "ready")
    os.mkfifo(ready)
    junit = os.path.join(work_dir, "report.xml")
    proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--junit", junit, "--", "sh", "-c",
                             f"trap 'exit 0' INT; echo up > {ready}; sleep 100 & wait"],
                            cwd=work_dir, env=run_env(lpd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with open(ready) as f:  # the trap is set
        assert f.read().strip() == "up"
    runs = lpd.lpctl_json("runs")
    assert len(runs) == 1, runs
    lpd.lpctl("stop", runs[0]["run_id"], "--grace", "5")
    out, err = proc.communicate(timeout=120)
    done = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    assert proc.returncode != 0 and done["returncode"] != 0, (out, err)
    _, cases = junit_cases(junit)
    assert len(cases) == 1 and cases[0].find("error") is not None, [ET.tostring(c) for c in cases]
    assert cases[0].find("error").get("type") == "interrupted"


# -- outside tests ----------------------------------------------------------

def test_a_crash_during_collection_is_recorded_with_its_phase_and_never_exits_5(lpd, work_dir):
    write_tests(work_dir, "test_collect.py", "import os\nos.abort()\ndef test_never():\n    pass\n")
    junit = os.path.join(work_dir, "report.xml")
    code, out, err, done = lpctl_run(lpd, work_dir, "--junit", junit, *pytest_cmd("test_collect.py"))
    assert code not in (0, 5), (out, err)
    assert code == -signal.SIGABRT  # 128+6: the signal's own code
    crashes = crashes_of(lpd, done["run_id"])
    assert len(crashes) == 1 and crashes[0]["phase"] == "collection" and crashes[0]["nodeid"] in ("", "python3")
    suite, cases = junit_cases(junit)
    assert int(suite.get("errors")) >= 1, ET.tostring(suite)


def test_a_crash_at_interpreter_exit_fails_the_run(lpd, work_dir):
    write_tests(work_dir, "conftest.py", """
import atexit, os
atexit.register(os.abort)
""")
    write_tests(work_dir, "test_ok.py", "def test_ok():\n    pass\n")
    junit = os.path.join(work_dir, "report.xml")
    code, out, err, done = lpctl_run(lpd, work_dir, "--junit", junit, *pytest_cmd("test_ok.py"))
    assert code != 0, (out, err)
    crashes = crashes_of(lpd, done["run_id"])
    assert len(crashes) == 1 and crashes[0]["nodeid"] == "" and crashes[0]["signal_name"] == "SIGABRT", crashes
    assert crashes[0]["phase"] in ("exit", "sessionfinish"), crashes
    suite, cases = junit_cases(junit)
    assert suite.get("errors") == "1" and len(cases) == 2, ET.tostring(suite)


def test_a_crash_in_fixture_setup_carries_the_phase(lpd, work_dir):
    write_tests(work_dir, "test_fix.py", """
import ctypes, pytest
@pytest.fixture
def broken():
    ctypes.string_at(0)
    yield
def test_uses(broken):
    pass
""")
    code, out, err, done = lpctl_run(lpd, work_dir, *pytest_cmd("test_fix.py"))
    crashes = crashes_of(lpd, done["run_id"])
    assert [(c["nodeid"], c["phase"]) for c in crashes] == [("test_fix.py::test_uses", "setup")], crashes


# -- flaky crashes ------------------------------------------------------------

FLAKY = """
import ctypes, os
def test_a_ok():
    pass
def test_b_flaky():
    marker = os.path.join(os.path.dirname(__file__), "crashed-once")
    if not os.path.exists(marker):
        open(marker, "w").close()
        ctypes.string_at(0)
"""


@pytest.mark.parametrize("xdist", [False, True], ids=["single", "xdist"])
@pytest.mark.parametrize("fail_on_flaky", [False, True], ids=["passes", "fail-on-flaky"])
def test_a_crash_that_passes_when_rerun_alone_is_flaky(lpd, work_dir, fail_on_flaky, xdist):
    # With xdist the crash is recorded while the attempt still runs (the
    # worker dies, the controller goes on): the rerun must still follow.
    write_tests(work_dir, "test_flaky.py", FLAKY)
    junit = os.path.join(work_dir, "report.xml")
    crash_log = os.path.join(work_dir, "crashes.log")
    extra = ["--fail-on-flaky"] if fail_on_flaky else []
    workers = ["-n", "2"] if xdist else []
    code, out, err, done = lpctl_run(lpd, work_dir, "--rerun-crashed", "2", "--junit", junit, "--crash-log",
                                     crash_log, *extra, *pytest_cmd(*workers, "test_flaky.py"))
    assert done["attempts"] == 2, (out, err)  # the run, then test_b_flaky alone
    crashes = crashes_of(lpd, done["run_id"])
    assert [(c["nodeid"], c["flaky"]) for c in crashes] == [("test_flaky.py::test_b_flaky", True)], crashes
    assert "flaky crash" in err
    finished = [f for f in events_of(lpd, done["run_id"], "test.finish") if f["nodeid"].endswith("test_b_flaky")]
    assert finished and finished[-1]["outcome"] == "passed" and finished[-1]["attempt"] == 2
    if fail_on_flaky:
        assert code != 0, (out, err)
    else:
        assert code == 0 and done["returncode"] == 0 and done["signal"] is None, (out, err)
    _, cases = junit_cases(junit)
    flaky = [c for c in cases if c.get("name") == "test_b_flaky"]
    assert len(flaky) == 1 and flaky[0].find("flakyError") is not None, ET.tostring(ET.parse(junit).getroot())
    assert [line["nodeid"] for line in read_jsonl(crash_log)] == ["test_flaky.py::test_b_flaky"]


def test_a_crash_that_crashes_again_alone_is_not_flaky(lpd, work_dir):
    write_tests(work_dir, "test_hard.py", "import ctypes\ndef test_crash():\n    ctypes.string_at(0)\n")
    code, out, err, done = lpctl_run(lpd, work_dir, "--rerun-crashed", "2", *pytest_cmd("test_hard.py"))
    assert done["attempts"] == 3, (out, err)  # the run, then two reruns alone
    crashes = crashes_of(lpd, done["run_id"])
    assert len(crashes) == 3 and not any(c["flaky"] for c in crashes), crashes
    assert sorted(c["attempt"] for c in crashes) == [1, 2, 3]
    assert code == -signal.SIGSEGV


def test_a_pytest_rerunfailures_rerun_that_passed_after_a_crash_is_flaky(lpd, work_dir):
    write_tests(work_dir, "test_flaky.py", FLAKY)
    code, out, err, done = lpctl_run(lpd, work_dir, *pytest_cmd("-n", "2", "--reruns", "1", "test_flaky.py"))
    crashes = crashes_of(lpd, done["run_id"])
    assert [(c["nodeid"], c["flaky"]) for c in crashes] == [("test_flaky.py::test_b_flaky", True)], (crashes, out)
    assert code == 0, (out, err)


# -- console traceback --------------------------------------------------------

def test_the_crash_traceback_reaches_the_console_and_lpctl_crashes(lpd, work_dir):
    write_tests(work_dir, "test_tb.py", "import ctypes\ndef test_segv_here():\n    ctypes.string_at(0)\n")
    code, out, err, done = lpctl_run(lpd, work_dir, *pytest_cmd("test_tb.py"))
    assert code == -signal.SIGSEGV
    # The live stream: the run's output, stderr apart when lpctl's stdout is
    # no terminal (run.done carries no traceback: it is not the console).
    console = out + err
    assert "Fatal Python error" in console and "test_tb.py" in console, console
    assert "Fatal Python error" not in json.dumps(done)
    text = lpd.lpctl("crashes", "-v", "--run-id", done["run_id"]).stdout  # h18cli: -v prints the traceback
    assert "test_tb.py::test_segv_here" in text and "Fatal Python error" in text and "line 3" in text, text
