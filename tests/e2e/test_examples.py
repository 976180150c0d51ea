"""Issue 18 (h18try): the quick start's sample (examples/run-sample.sh, what
scripts/try.sh runs once it has built lpd), against the built binaries and
a private lpd: the crash is pinned on the test that segfaulted, with its
traceback; the failing test paused and was resumed with the script's
reason; the helper server was started once for both tests using it; the
JUnit file has each test's outcome."""

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from lpd_harness import LPD_BIN, SOURCE_DIR, EventWaiter, Lpd

RUN_SAMPLE = os.path.join(SOURCE_DIR, "examples", "run-sample.sh")


@pytest.fixture
def lpd():
    d = Lpd().start()
    yield d
    d.stop()
    shutil.rmtree(d.root, ignore_errors=True)


def test_the_sample_shows_crash_pause_helper_and_junit(lpd):
    out = os.path.join(lpd.root, "out")
    sample = os.path.join(SOURCE_DIR, "examples", "sample-suite")
    sample_before = sorted(os.listdir(sample))
    events = EventWaiter(lpd, types=["process.starting", "process.ready", "pause.", "run.ended"])
    result = subprocess.run(["bash", RUN_SAMPLE, os.path.dirname(os.path.abspath(LPD_BIN)), out],
                            capture_output=True, text=True, timeout=600, env=lpd.env(), cwd="/")
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    assert "PROBLEM" not in text

    # What lpd saw, from the subscription opened before the run: the pause
    # created and resumed with the script's reason, the helper started once.
    created = events.wait("pause.created", timeout=60)
    assert created["nodeid"] == "test_2_pause.py::test_total_is_wrong"
    resumed = events.wait("pause.resumed", timeout=60)
    assert resumed["pause_id"] == created["pause_id"]
    ended = events.wait("run.ended", timeout=60)
    run_id = ended["run_id"]
    assert created["run_id"] == run_id
    events.close()
    listed = lpd.lpctl("--json", "events", "--type", "process.starting").stdout.splitlines()
    starts = [json.loads(line)["data"] for line in listed]
    assert [p.get("name") for p in starts].count("sample-counter") == 1, starts

    pauses = lpd.lpctl_json("ls", "-a", "--run-id", run_id)
    assert len(pauses) == 1 and pauses[0]["status"] == "resumed"
    assert "wrong on purpose" in json.dumps(pauses[0])  # the failure reason the script gave

    crashes = lpd.lpctl_json("crashes", "--run-id", run_id)
    assert [c["nodeid"] for c in crashes] == ["test_3_crash.py::test_segfault"]
    assert crashes[0]["signal"] in (11, "SIGSEGV")
    assert "read_through_null" in crashes[0]["traceback"]

    junit = ET.parse(os.path.join(out, "sample-junit.xml"))
    outcome = {}
    for case in junit.iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcome[case.get("name")] = kinds[0] if kinds else "passed"
    assert outcome["test_helper_first_visit"] == "passed" and outcome["test_helper_reused"] == "passed", outcome
    assert outcome["test_total_is_wrong"] == "failure", outcome
    assert outcome["test_segfault"] in ("failure", "error"), outcome
    assert "wrong on purpose" in ET.tostring(junit.getroot(), encoding="unicode")

    # The summary says where to look and how to stop this lpd.
    assert f"{os.path.dirname(os.path.abspath(LPD_BIN))}/lpd stop --socket {lpd.socket}" in result.stdout
    assert os.path.join(out, "sample-junit.xml") in result.stdout
    # The sample leaves the source tree as it was (no cache, no bytecode).
    assert sorted(os.listdir(sample)) == sample_before
