"""h13f2 (issue 13, the attack's F2): a run's events cannot fill lpd's state
directory.

One user's connection wrote 5.2 GB of events in 20 s: every event goes to
the run's journal (runs/<id>/events.jsonl) and lpd's events journal, and
nothing bounded them. lpd now keeps no more of a run's events on disk past
--run-events-max (they are still sent live, and the run's report, built
from memory at its end, stays complete), says so once (log, the
run.events_not_kept event, a line in the run's journal), and, when it is
restarted before the run's report is written, the report says results may
be missing instead of passing over them. Past --run-events-per-user-max,
that user's oldest ended runs are removed; another user's never are.

Every wait is an event (lpd's events, a FIFO the test opens); never a sleep."""

import json
import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET

from lpd_harness import LPCTL_BIN, PYTHON, EventWaiter, Lpd, seed_run, write_tests

LIMIT = 64 * 1024  # the smallest --run-events-max lpd takes
TESTS = 300  # two events of about 350 bytes each per test: about three times LIMIT


def pytest_args(*args):
    return ["--", PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]


def many_tests(extra=""):
    # Long ids: each test's events are a few hundred bytes.
    return ("import pytest\n"
            f"@pytest.mark.parametrize('n', [('case-' + 'x' * 120 + '-%d' % i) for i in range({TESTS})])\n"
            "def test_many(n):\n"
            "    pass\n" + extra)


def journal_of(lpd, run_id):
    return os.path.join(lpd.state_dir, "runs", run_id, "events.jsonl")


def journal_lines(lpd, run_id):
    with open(journal_of(lpd, run_id)) as f:
        return [json.loads(line) for line in f]


def cases_of(junit):
    return {case.get("name"): [child for child in case] for case in ET.parse(junit).getroot().iter("testcase")}


def start_capped(*extra):
    return Lpd().start("--run-events-max", str(LIMIT), *extra)


def stop_and_clean(lpd):
    try:
        lpd.stop()
    finally:
        if not os.environ.get("LPD_E2E_KEEP"):
            shutil.rmtree(lpd.root, ignore_errors=True)


def test_a_runs_events_past_its_limit_stay_off_disk_and_its_report_is_complete(work_dir):
    lpd = start_capped()
    try:
        write_tests(work_dir, "test_many.py", many_tests())
        junit = os.path.join(work_dir, "report.xml")
        told = EventWaiter(lpd, types=["run.events_not_kept"])
        proc = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--junit", junit,
                               *pytest_args("test_many.py")],
                              cwd=work_dir, env=lpd.env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        run_id = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])["run_id"]
        note = told.wait("run.events_not_kept")
        told.close()
        assert (note["limit"], note["reason"], note["run_id"]) == (LIMIT, "run", run_id), note
        # The report came from memory: every test, none missing, no error.
        cases = cases_of(junit)
        assert len(cases) == TESTS, len(cases)
        assert all(children == [] for children in cases.values())
        # On disk: at most the limit, then lpd's note and the run's end
        # (and the ring marks of its reads, a few dozen bytes each).
        assert os.path.getsize(journal_of(lpd, run_id)) < LIMIT + 8192
        lines = journal_lines(lpd, run_id)
        finishes = [line for line in lines if line["event"] == "test.finish"]
        assert 0 < len(finishes) < TESTS
        assert [line["event"] for line in lines].count("run.events_not_kept") == 1
        assert [line for line in lines if line["event"] != "lpd.ring_read"][-1]["event"] == "run.ended"
        log = lpd.log_text()
        assert f"run {run_id}: its events journal is full ({LIMIT} bytes, --run-events-max)" in log, log
        # lpd's events journal holds no copy of a refused line either.
        logged = 0
        events_dir = os.path.join(lpd.state_dir, "events")
        for name in os.listdir(events_dir):
            if name.endswith(".jsonl"):
                with open(os.path.join(events_dir, name)) as f:
                    logged += sum(1 for line in f if '"event":"test.finish"' in line and run_id in line)
        assert logged == len(finishes)
    finally:
        stop_and_clean(lpd)


def test_an_lpd_restarted_past_the_limit_says_its_report_may_lack_results(work_dir):
    """Killed after the run's journal stopped, lpd reads the run's results
    back from that journal: the report must not pass over what is not there."""
    lpd = start_capped()
    try:
        fifo = os.path.join(work_dir, "go")
        os.mkfifo(fifo)
        write_tests(work_dir, "test_many.py", many_tests(f"""
def test_z_wait():
    open({fifo!r}).read()
"""))
        junit = os.path.join(work_dir, "report.xml")
        waiter = EventWaiter(lpd, types=["run.events_not_kept", "test.start"])
        proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--junit", junit,
                                 *pytest_args("test_many.py")],
                                cwd=work_dir, env=lpd.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            waiter.wait("run.events_not_kept")
            waiter.wait("test.start", nodeid="test_many.py::test_z_wait")
            waiter.close()
            lpd.kill9()
            lpd.start("--run-events-max", str(LIMIT))
            with open(fifo, "w") as f:
                f.write("go")
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, out + err  # the command's own outcome
        cases = cases_of(junit)
        missing = cases.get("results not kept")
        assert missing is not None, sorted(cases)[:5]
        assert missing[0].tag == "error" and "--run-events-max" in missing[0].get("message"), missing[0].attrib
        root = ET.parse(junit).getroot().find("testsuite")
        assert int(root.get("errors")) >= 1
        # Every collected test is listed; those without a result say it is unknown, not "not run".
        assert len(cases) == TESTS + 2, len(cases)
        for name, children in cases.items():
            for child in children:
                if child.tag == "skipped":
                    assert child.get("message").startswith("result unknown: lpd kept no more"), (name, child.attrib)
    finally:
        stop_and_clean(lpd)


def test_a_user_past_their_journal_bytes_loses_their_oldest_ended_runs_and_no_one_elses(work_dir):
    lpd = Lpd()
    # Another user's ended run, small: never removed for this user's.
    other = "20260101-000000-0ther0"
    run_dir = seed_run(lpd.state_dir, other, created_at=time.time() - 60, ended_at=time.time() - 50, owner=4242)
    with open(os.path.join(run_dir, "events.jsonl"), "w") as f:
        f.write('{"event":"run.ended","seq":1,"time":2.0,"run_id":"%s"}\n' % other)
    lpd.start("--run-events-per-user-max", str(LIMIT), "--run-events-max", "0")
    try:
        write_tests(work_dir, "test_many.py", many_tests())
        run_ids = []
        for _ in range(3):
            proc = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", *pytest_args("test_many.py")],
                                  cwd=work_dir, env=lpd.env(), capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            run_ids.append(json.loads([l for l in proc.stdout.splitlines() if l.startswith("{")][-1])["run_id"])
        # Each run alone is over the user's bytes: while it ran, the running
        # run was refused past them; each end removed the user's older runs.
        kept = {r["run_id"] for r in lpd.lpctl_json("runs", "-a")}
        assert run_ids[-1] in kept and run_ids[0] not in kept and run_ids[1] not in kept, (run_ids, kept)
        assert not os.path.exists(os.path.join(lpd.state_dir, "runs", run_ids[0]))
        assert os.path.exists(os.path.join(lpd.state_dir, "runs", other, "run.json"))
        assert os.path.getsize(journal_of(lpd, run_ids[-1])) < LIMIT + 8192
        assert "the events journals of its user's running runs are full" in lpd.log_text()
    finally:
        stop_and_clean(lpd)


def test_a_users_helper_events_cannot_fill_the_events_journal(work_dir):
    """The attack (stop 39): helpers' process.* events belong to no run, so
    no run cap counted them, and each carries the helper's argv (up to
    256 KiB): `lpctl ensure` in a loop grew events/ by 96 MB in 26 s, kept
    for --keep-days. They count against --run-events-per-user-max now."""
    lpd = Lpd().start("--run-events-per-user-max", str(LIMIT))
    try:
        events_dir = os.path.join(lpd.state_dir, "events")

        def journal_bytes():
            return sum(os.path.getsize(os.path.join(events_dir, n)) for n in os.listdir(events_dir)
                       if n.endswith(".jsonl"))

        before = journal_bytes()
        big = "A" * 30_000
        live = EventWaiter(lpd, types=["process."])
        for i in range(12):
            # A helper that exits at once, printing no ready line: ensure
            # fails, and its events (started, exited) carry the 60 KB argv.
            result = lpd.lpctl("ensure", f"fl{i}", "--pattern", "never", "--timeout", "5", "--",
                               "/bin/sh", "-c", "exit 0", big, big, check=False)
            assert result.returncode != 0
        # Every one was still sent live.
        names = set()
        while len(names) < 12:
            data = live.wait("process.exited")
            names.add(data.get("name"))
        live.close()
        assert lpd.ping()
        grown = journal_bytes() - before
        # Two or three events of 60 KB each per helper would be 1.4-2.2 MB:
        # at most the user's bytes reached the journal (and one line past them, at most).
        assert grown < LIMIT + 70_000, grown
        assert "its events of no run (helpers' process.* events) in lpd's events journal reached" in lpd.log_text()
    finally:
        stop_and_clean(lpd)
