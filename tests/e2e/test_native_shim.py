"""Issue 7: the native shim (C ABI library) and its GoogleTest and Catch2
adapters, driven through the sample binaries in tests/native against a real
lpd, a fake peer that records the wire, or no daemon at all. Waits are
events (pause pushes, process exits, socket EOF), never sleeps."""

import os
import subprocess
import threading
import uuid
import xml.etree.ElementTree as ET

import pytest

from lpd_harness import (LPCTL_BIN, EventWaiter, answer_as_lpd, build_is_sanitized, fake_lpd_listener, finish,
                         short_tempdir)

BUILD_DIR = os.environ.get("LPD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build", "default"))
NATIVE_DIR = os.path.join(BUILD_DIR, "tests", "native")
GTEST_SAMPLE = os.path.join(NATIVE_DIR, "gtest_sample")
CATCH2_SAMPLE = os.path.join(NATIVE_DIR, "catch2_sample")
C_SAMPLE = os.path.join(NATIVE_DIR, "c_sample")

# Sanitizers install their own SIGSEGV/SIGBUS/SIGFPE handlers; ours chains to
# them (see shim/native/README.md). These options keep them out of the way
# where a test wants to see the true signal death; they mean nothing without ASan.
NO_SANITIZER_SIGNALS = "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0"


SANITIZED = build_is_sanitized(BUILD_DIR)


def new_run_id():
    return "native-" + uuid.uuid4().hex[:10]


def native_env(lpd=None, socket_path=None, run_id=None, **extra):
    env = dict(os.environ)
    for name in ("LPD_SOCKET", "LPD_RUN_ID", "LPD_WORKER_ID", "LPD_PAUSE_ON_FAILURE", "LPD_CHECKPOINT_MOCK"):
        env.pop(name, None)
    if lpd is not None:
        env["LPD_SOCKET"] = lpd.socket
    if socket_path is not None:
        env["LPD_SOCKET"] = socket_path
    if run_id:
        env["LPD_RUN_ID"] = run_id
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), NO_SANITIZER_SIGNALS]))
    env.update(extra)
    return env


def start(argv, env):
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)


def run(argv, env, timeout=120):
    return finish(start(argv, env), timeout=timeout)


class RecordingPeer:
    """A fake lpd for one connection: answers hello and run.register,
    records every line, and is done when the test process closes its end
    (also by dying), so `lines()` waits on EOF, not on time."""

    def __init__(self):
        self.dir, self.path, self.listener = fake_lpd_listener("peer.sock", 4)
        self.listener.settimeout(120)
        self._lines = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        conn.settimeout(120)
        answer_as_lpd(conn, lambda msg: {"run_id": "peer-run"} if msg["op"] == "run.register" else {},
                      self._lines.append, allow_blank_lines=True)

    def lines(self):
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the test process never closed its connection"
        return self._lines

    def close(self):
        self.listener.close()
        subprocess.run(["rm", "-rf", self.dir])


@pytest.fixture
def peer():
    p = RecordingPeer()
    yield p
    p.close()


# -- no daemon configured ---------------------------------------------------

def test_without_a_daemon_the_binaries_run_normally():
    env = native_env(LPD_PAUSE_ON_FAILURE="1")
    code, out = run([GTEST_SAMPLE, "--gtest_filter=Sample.*Passes:CheckpointTest.*"], env)
    assert code == 0, out
    assert "CHECKPOINT result=none reason='' status=disabled" in out
    assert "LPD" not in out
    code, out = run([GTEST_SAMPLE, "--gtest_filter=Sample.Fails"], env)
    assert code == 1 and "wrong answer" in out and "LPD" not in out, out  # no pause without a daemon
    code, out = run([CATCH2_SAMPLE, "CatchPasses"], env)
    assert code == 0, out
    code, out = run([CATCH2_SAMPLE, "CatchFails"], env)
    assert code == 1 and "[lpd]" not in out, out
    code, out = run([C_SAMPLE], env)
    assert code == 3 and "no daemon configured" in out, out


def test_checkpoint_mock_answers_without_a_daemon():
    code, out = run([GTEST_SAMPLE, "--gtest_filter=CheckpointTest.*"], native_env(LPD_CHECKPOINT_MOCK="false"))
    assert code == 0, out
    assert "CHECKPOINT result=false reason='Mock' status=ok" in out


def test_an_unreachable_daemon_does_not_stop_the_tests(tmp_path):
    env = native_env(socket_path="/tmp/lpd-no-such-dir/none.sock")
    code, out = run([GTEST_SAMPLE, "--gtest_filter=Sample.*Passes"], env)
    assert code == 0, out


# -- checkpoints and failure pauses through a real lpd -------------------------

def _wait_pause(lpd, argv, run_id, env):
    events = EventWaiter(lpd, types=["pause."], run_id=run_id)
    proc = start(argv, env)
    pause = events.wait("pause.created")
    return events, proc, pause


@pytest.mark.parametrize("argv,nodeid,task,result,reason", [
    ([GTEST_SAMPLE, "--gtest_filter=CheckpointTest.AsksAHuman"], "CheckpointTest.AsksAHuman", "approve native",
     "false", "too slow"),
    ([CATCH2_SAMPLE, "CatchCheckpoint"], "CatchCheckpoint", "approve catch2", "true", "looks good"),
], ids=["gtest-resumed-false", "catch2-resumed-true"])
def test_a_checkpoint_returns_the_result_and_the_reason_it_was_resumed_with(lpd, argv, nodeid, task, result, reason):
    run_id = new_run_id()
    events, proc, pause = _wait_pause(lpd, argv, run_id, native_env(lpd, run_id=run_id))
    assert pause["kind"] == "checkpoint"
    assert pause["nodeid"] == nodeid
    assert pause["task"] == task
    assert pause["pid"] == proc.pid
    assert proc.poll() is None  # blocked in the test body
    lpd.lpctl("resume", pause["pause_id"], "--result", result, "--reason", reason)
    code, out = finish(proc)
    assert code == 0, out
    assert f"CHECKPOINT result={result} reason='{reason}' status=ok" in out
    events.close()


def _resume_failure(lpd, proc, pause, reason):
    """Resumes the failure `pause` of `proc` with `reason`; checks what the
    test's output then says (the reason, and the resume line naming the
    pause) and returns that output."""
    lpd.lpctl("resume", pause["pause_id"], "--failure-reason", reason)
    code, out = finish(proc)
    assert code == 1, out
    assert f"external failure reason (lpd): {reason}" in out
    # h18docs: the adapter's line names the real pause, not a placeholder.
    assert f"Resume with: lpctl resume {pause['pause_id']} [--failure-reason TEXT]" in out, out
    assert "<pause_id>" not in out
    return out


def test_gtest_failure_paused_and_resumed_with_a_reason_in_the_output(lpd):
    run_id = new_run_id()
    workdir = short_tempdir()
    xml_path = os.path.join(workdir, "report.xml")
    events, proc, pause = _wait_pause(
        lpd, [GTEST_SAMPLE, "--gtest_filter=Sample.Fails", f"--gtest_output=xml:{xml_path}"], run_id,
        native_env(lpd, run_id=run_id, LPD_PAUSE_ON_FAILURE="1"))
    assert pause["kind"] == "failure"
    assert pause["nodeid"] == "Sample.Fails"
    assert "wrong answer" in pause["original_failure"]
    assert proc.poll() is None
    out = _resume_failure(lpd, proc, pause, "known flaky: ticket 42")
    # Paused at the failing assertion, before teardown: the body went on afterwards.
    assert out.index("known flaky: ticket 42") < out.index("SAMPLE-FAILS-BODY-CONTINUED")
    failures = [f.get("message", "") + (f.text or "") for f in ET.parse(xml_path).iter("failure")]
    assert any("known flaky: ticket 42" in text for text in failures), failures
    assert events.wait("pause.resumed")["failure_reason"] == "known flaky: ticket 42"
    events.close()
    subprocess.run(["rm", "-rf", workdir])


def test_catch2_failure_paused_and_resumed_with_a_reason_in_the_output(lpd):
    run_id = new_run_id()
    events, proc, pause = _wait_pause(lpd, [CATCH2_SAMPLE, "CatchFails"], run_id,
                                      native_env(lpd, run_id=run_id, LPD_PAUSE_ON_FAILURE="1"))
    assert pause["kind"] == "failure" and pause["nodeid"] == "CatchFails"
    assert "answer == 41" in pause["original_failure"]
    _resume_failure(lpd, proc, pause, "known flaky: ticket 43")
    events.close()


def test_failure_pause_resumed_without_a_reason_appends_nothing(lpd):
    run_id = new_run_id()
    events, proc, pause = _wait_pause(lpd, [GTEST_SAMPLE, "--gtest_filter=Sample.Fails"], run_id,
                                      native_env(lpd, run_id=run_id, LPD_PAUSE_ON_FAILURE="1"))
    lpd.lpctl("resume", pause["pause_id"])
    code, out = finish(proc)
    assert code == 1, out
    assert "external failure reason" not in out
    events.close()


def test_c_program_passes_a_checkpoint(lpd):
    run_id = new_run_id()
    events, proc, pause = _wait_pause(lpd, [C_SAMPLE], run_id, native_env(lpd, run_id=run_id))
    assert pause["kind"] == "checkpoint" and pause["nodeid"] == "c_sample.checkpoint"
    assert pause["task"] == "approve from C" and pause["run_id"] == run_id
    lpd.lpctl("resume", pause["pause_id"], "--result", "true", "--reason", "fine from C")
    code, out = finish(proc)
    assert code == 0, out
    assert f"C-SAMPLE run {run_id}" in out
    assert "C-CHECKPOINT status=ok result=1 outcome=0 reason='fine from C'" in out
    events.close()


def test_a_shim_without_run_id_starts_its_own_run_and_ends_it(lpd):
    events = EventWaiter(lpd, types=["run."])
    code, out = run([GTEST_SAMPLE, "--gtest_filter=Sample.*Passes"], native_env(lpd))
    assert code == 0, out
    started = events.wait("run.started")
    ended = events.wait("run.ended", run_id=started["run_id"])
    assert ended["run_id"] == started["run_id"]
    events.close()


# -- the crash handler, on the wire -----------------------------------------------

def _crash_lines(peer, argv, env_extra=None):
    env = native_env(socket_path=peer.path, run_id="peer-run", **(env_extra or {}))
    code, out = run(argv, env)
    return code, out, peer.lines()


@pytest.mark.parametrize("argv,nodeid,sig", [
    ([GTEST_SAMPLE, "--gtest_filter=CrashTest.NullDeref"], "CrashTest.NullDeref", 11),
    ([GTEST_SAMPLE, "--gtest_filter=CrashTest.Abort"], "CrashTest.Abort", 6),
    ([CATCH2_SAMPLE, "CatchNullDeref"], "CatchNullDeref", 11),
    ([CATCH2_SAMPLE, "CatchAbort"], "CatchAbort", 6),
], ids=["gtest-segv", "gtest-abort", "catch2-segv", "catch2-abort"])
def test_crash_notice_names_the_test_and_the_process_dies_by_the_signal(peer, argv, nodeid, sig):
    code, out, lines = _crash_lines(peer, argv)
    assert code == -sig, out
    ops = [m["op"] for m in lines]
    assert ops[:2] == ["hello", "run.register"], lines
    assert {"op": "test.start", "nodeid": nodeid, "phase": "call"} in lines
    assert lines[-1] == {"op": "crash.notice", "signal": sig, "nodeid": nodeid}, lines
    assert ops.index("test.start") < ops.index("crash.notice")
    assert "test.finish" not in ops and "run.end" not in ops


def test_an_expected_death_in_a_death_test_is_not_reported_as_a_crash(peer):
    code, out, lines = _crash_lines(peer, [GTEST_SAMPLE, "--gtest_filter=DeathTest.*"])
    assert code == 0, out
    ops = [m["op"] for m in lines]
    assert "crash.notice" not in ops, lines
    assert ops == ["hello", "run.register", "test.start", "test.finish", "run.end"], lines
    assert lines[3]["outcome"] == "passed"


def test_passing_and_failing_tests_are_reported_with_outcome_and_duration(peer):
    code, out, lines = _crash_lines(peer, [GTEST_SAMPLE, "--gtest_filter=Sample.*"])
    assert code == 1, out
    finished = {m["nodeid"]: m for m in lines if m["op"] == "test.finish"}
    assert finished["Sample.Passes"]["outcome"] == "passed" and finished["Sample.Passes"]["message"] == ""
    assert finished["Sample.Fails"]["outcome"] == "failed" and "wrong answer" in finished["Sample.Fails"]["message"]
    assert all(m["phase"] == "call" and isinstance(m["duration"], float) for m in finished.values())
    assert lines[-1]["op"] == "run.end"


@pytest.mark.skipif(not SANITIZED, reason="only an ASan build has a sanitizer SIGSEGV handler to chain to")
def test_under_asan_the_notice_is_sent_and_then_asan_reports(peer):
    env = native_env(socket_path=peer.path, run_id="peer-run")
    env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "")  # ASan's own handler stays in place
    code, out = run([GTEST_SAMPLE, "--gtest_filter=CrashTest.NullDeref"], env)
    lines = peer.lines()
    assert lines[-1] == {"op": "crash.notice", "signal": 11, "nodeid": "CrashTest.NullDeref"}, lines
    assert "AddressSanitizer: SEGV" in out, out
    assert code != 0


def test_a_crash_against_the_real_daemon_leaves_it_running(lpd):
    run_id = new_run_id()
    events = EventWaiter(lpd, types=["run."], run_id=run_id)
    code, out = run([GTEST_SAMPLE, "--gtest_filter=CrashTest.NullDeref"], native_env(lpd, run_id=run_id))
    assert code == -11, out
    events.wait("run.ended")  # the controller's connection closed with the process
    assert lpd.ping()
    events.close()


# -- under `lpctl run` (needs the lead's issue-5 work) -----------------------------

def _lpctl_run(lpd, argv):
    env = native_env(lpd)
    env["LPD_SOCKET"] = lpd.socket
    return subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", *argv], capture_output=True, text=True,
                          timeout=120, env=env)


def _signal_matches(value, sig, name):
    return value in (sig, name, name[3:]) or (isinstance(value, str) and value.upper().startswith(name))


@pytest.mark.parametrize("argv,nodeid,sig,name", [
    ([GTEST_SAMPLE, "--gtest_filter=CrashTest.NullDeref"], "CrashTest.NullDeref", 11, "SIGSEGV"),
    ([GTEST_SAMPLE, "--gtest_filter=CrashTest.Abort"], "CrashTest.Abort", 6, "SIGABRT"),
    ([CATCH2_SAMPLE, "CatchNullDeref"], "CatchNullDeref", 11, "SIGSEGV"),
    ([CATCH2_SAMPLE, "CatchAbort"], "CatchAbort", 6, "SIGABRT"),
], ids=["gtest-segv", "gtest-abort", "catch2-segv", "catch2-abort"])
def test_lpctl_run_attributes_the_crash_and_keeps_the_signal(lpd, argv, nodeid, sig, name):
    result = _lpctl_run(lpd, argv)
    # lpctl run passes the real signal death on: it dies by the same signal.
    assert result.returncode == -sig, (result.returncode, result.stdout, result.stderr)
    assert f"killed by {name}" in result.stderr, result.stderr
    # lpctl says it ends by that signal on purpose, so a shell's "Segmentation fault" is not read as lpctl's own.
    assert f"lpctl: ending by {name}, as the run did" in result.stderr, result.stderr
    crashes = lpd.lpctl_json("crashes")
    if isinstance(crashes, dict):
        crashes = crashes.get("crashes", [])
    assert len(crashes) == 1, crashes
    crash = crashes[0]
    assert crash["nodeid"] == nodeid, crash
    assert _signal_matches(crash["signal"], sig, name), crash
    assert crash.get("signal_name", name) == name, crash
    # The body crashed, after test_started: "call", never a fixture's "setup".
    assert crash["phase"] == "call", crash
    assert f"{nodeid} [call]" in result.stderr, result.stderr


def test_lpctl_run_records_no_crash_for_passing_native_tests(lpd):
    result = _lpctl_run(lpd, [GTEST_SAMPLE, "--gtest_filter=Sample.*Passes:DeathTest.*"])
    assert result.returncode == 0, (result.stdout, result.stderr)
    crashes = lpd.lpctl_json("crashes")
    if isinstance(crashes, dict):
        crashes = crashes.get("crashes", [])
    assert crashes == [], crashes


def _start_lpctl_run(lpd, *args):
    env = native_env(lpd)
    return subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "run", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)


def test_lpctl_run_checkpoint_in_a_native_test_resumed_false(lpd):
    events = EventWaiter(lpd, types=["pause.created"])
    proc = _start_lpctl_run(lpd, "--", GTEST_SAMPLE, "--gtest_filter=CheckpointTest.AsksAHuman")
    pause = events.wait("pause.created")
    assert pause["nodeid"] == "CheckpointTest.AsksAHuman" and pause["kind"] == "checkpoint"
    lpd.lpctl("resume", pause["pause_id"], "--result", "false", "--reason", "not today")
    code, out = finish(proc)
    assert code == 0, out
    assert "CHECKPOINT result=false reason='not today' status=ok" in out
    events.close()


def test_lpctl_run_pause_on_failure_reaches_the_native_adapter(lpd):
    events = EventWaiter(lpd, types=["pause.created"])
    proc = _start_lpctl_run(lpd, "--pause-on-failure", "--", GTEST_SAMPLE, "--gtest_filter=Sample.Fails")
    pause = events.wait("pause.created")
    assert pause["nodeid"] == "Sample.Fails" and pause["kind"] == "failure"
    lpd.lpctl("resume", pause["pause_id"], "--failure-reason", "known flaky: ticket 44")
    code, out = finish(proc)
    assert code == 1, out
    assert "external failure reason (lpd): known flaky: ticket 44" in out
    events.close()


def test_lpctl_run_junit_has_the_native_tests_and_the_crash(lpd):
    workdir = short_tempdir()
    junit = os.path.join(workdir, "junit.xml")
    env = native_env(lpd)
    result = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--junit", junit, "--", GTEST_SAMPLE,
                             "--gtest_filter=Sample.Passes:CrashTest.NullDeref"], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == -11, (result.stdout, result.stderr)
    cases = {c.get("name"): c for c in ET.parse(junit).iter("testcase")}
    names = " ".join(f"{c.get('classname', '')} {n}" for n, c in cases.items())
    assert "Passes" in names and "NullDeref" in names, names
    crashed = [c for n, c in cases.items() if "NullDeref" in n]
    assert crashed and (crashed[0].find("failure") is not None or crashed[0].find("error") is not None)
    subprocess.run(["rm", "-rf", workdir])
