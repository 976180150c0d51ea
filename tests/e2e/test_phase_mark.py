"""Issue 13 (CPU per test): the pytest shim says a test's call and teardown
in its event ring's phase mark (one word in the header) instead of a
test.phase record each, when lpd offers it in ring.attach. A crash must
still be pinned on the phase it happened in, and a mark left by the test
before must never be taken for the next test's. Run through real lpd,
lpctl, pytest and xdist; waits are process ends."""

import json
import os
import struct
import subprocess
import sys

import pytest

from lpd_harness import LPCTL_BIN, PYTHON, SHIM_MODULE_DIR, SHIM_PYTHONPATH, write_tests

sys.path[:0] = SHIM_PYTHONPATH.split(os.pathsep)

from lpd_pytest import event_ring, messages  # noqa: E402

NO_SANITIZER_SIGNALS = "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0"

SUITE = """
import ctypes, os, pytest

def crash():
    ctypes.string_at(0)

@pytest.fixture
def plain_teardown():
    yield

@pytest.fixture
def crash_in_teardown():
    yield
    if os.environ["WHERE"] == "teardown":
        crash()

@pytest.fixture
def crash_in_setup():
    if os.environ["WHERE"] == "setup":
        crash()
    yield

def test_a_passes_first(plain_teardown):
    # Leaves a teardown mark behind for the next test to ignore.
    pass

def test_b_target(crash_in_setup, crash_in_teardown):
    if os.environ["WHERE"] == "call":
        crash()
"""


def run_suite(lpd, work_dir, where, *pytest_args):
    env = lpd.env()
    for name in ("LPD_RUN_ID", "LPD_WORKER_ID", "LPD_PAUSE_ON_FAILURE"):
        env.pop(name, None)
    env["WHERE"] = where
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), NO_SANITIZER_SIGNALS]))
    result = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--", PYTHON, "-m", "pytest",
                             "-p", "no:cacheprovider", "-q", *pytest_args, "test_marks.py"],
                            cwd=work_dir, capture_output=True, text=True, timeout=240, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.stdout + result.stderr
    done = json.loads(lines[-1])
    return result, done


@pytest.mark.parametrize("xdist", [(), ("-n", "1")], ids=["single", "xdist"])
@pytest.mark.parametrize("where", ["setup", "call", "teardown"])
def test_a_crash_is_pinned_on_the_phase_the_mark_names(lpd, work_dir, where, xdist):
    write_tests(work_dir, "test_marks.py", SUITE)
    # With xdist, one worker runs both tests in order, so a's last mark is
    # still in its ring when b starts. (--dist loadfile would hand the
    # crashed test to each restarted worker: 9 real crashes, not one.)
    result, done = run_suite(lpd, work_dir, where, *xdist)
    assert result.returncode != 0, result.stdout
    crashes = lpd.lpctl_json("crashes", "--run-id", done["run_id"])
    assert [(c["nodeid"], c["phase"]) for c in crashes] == [("test_marks.py::test_b_target", where)], \
        (crashes, result.stderr)
    assert f"while running test_marks.py::test_b_target ({where})" in crashes[0]["reason"], crashes[0]


def phase_mark_word(ring):
    return struct.unpack_from("<Q", ring.memory, 24)[0]


def records_of(ring):
    """The records written so far, as JSON objects (the ring never wraps here)."""
    data, out, position = bytes(ring.memory[64:]), [], 0
    while position < ring.write_position:
        (length,) = struct.unpack_from("<I", data, position)
        out.append(json.loads(data[position + 4:position + 4 + length]))
        position += 4 + length
    return out


def test_the_c_writer_marks_phases_only_when_lpd_asked_and_its_start_is_in_the_ring():
    if not os.path.isdir(SHIM_MODULE_DIR) or event_ring._lpd_ring is None:
        pytest.skip("this build has no C ring writer (a sanitizer build): test.phase records say the phases")
    ring = event_ring.EventRing(4096)
    try:
        fast = ring.fast
        a, b = messages.quote("t.py::test_a"), messages.quote("t.py::test_b")
        # An lpd that did not offer the mark gets records, as before.
        assert fast.start(a) >= 0
        assert fast.phase(a, "call") >= 0
        assert [r["op"] for r in records_of(ring)] == ["test.start", "test.phase"]
        assert phase_mark_word(ring) == 0
        ring.set_phase_mark(True)
        b_at = ring.write_position
        assert fast.start(b) >= 0
        assert fast.phase(b, "call") == 0
        assert phase_mark_word(ring) == (b_at << 8) | 2
        assert fast.phase(b, "teardown") == 0
        assert phase_mark_word(ring) == (b_at << 8) | 3
        assert fast.phase(b, "setup") == 0  # a rerun's setup
        assert phase_mark_word(ring) == (b_at << 8) | 1
        assert [r["op"] for r in records_of(ring)] == ["test.start", "test.phase", "test.start"]
        # A start that did not fit went on the socket: its phases must too.
        huge = messages.quote("t.py::test_" + "x" * 70000)
        assert fast.start(huge) == -1
        assert fast.phase(huge, "call") == -1  # the caller sends it on the socket
        assert phase_mark_word(ring) == (b_at << 8) | 1
    finally:
        ring.close()
