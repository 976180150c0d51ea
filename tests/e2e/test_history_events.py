"""Issue 13, piece "history": events and runs history at scale. Lists page
(no reply nears the 1 MiB line limit, lpctl pages transparently), seq keeps
increasing across restarts, --since resumes across them, and retention
removes old ended runs (never an active one) without following links."""

import json
import os
import shutil
import subprocess
import time

import pytest

import select

from lpd_harness import LPCTL_BIN, Lpd, seed_run, user_admin

MIB = 1 << 20
BIG_ARG = "x" * 3000  # a run's argv is in run.list and in its run.started event


def make_run(lpd, argv=("pytest", BIG_ARG), close=True):
    """A run registered by a raw controller connection, like the pytest
    shim's; closing the connection ends it. Returns (run_id, client)."""
    client = lpd.client()
    reply = client.request("run.register", argv=list(argv), cwd="/src", hostname="ci")
    assert reply["ok"], reply
    if close:
        # run.ended is published once lpd saw the connection go: ping on a
        # second connection after the close proves nothing, so wait for it.
        client.close()
        client = None
    return reply["result"]["run_id"], client


def wait_ended(lpd, run_ids):
    """Waits, on an event stream, until every run of `run_ids` ended."""
    waiting = set(run_ids)
    client = lpd.client()
    try:
        assert client.request("events.subscribe", types=["run.ended"], since=0)["ok"]
        while waiting:
            msg = client.read_message(timeout=60)
            assert msg is not None, "lpd closed the event stream"
            if msg.get("event") == "run.ended":
                waiting.discard(msg["data"]["run_id"])
    finally:
        client.close()


class LineReader:
    """Lines of a child's stdout pipe as they come (select on the raw fd: a
    buffered file object would hide lines it already read ahead)."""

    def __init__(self, fd):
        self.fd, self.buf = fd, b""

    def line(self, timeout=60):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            assert left > 0, "no line within timeout"
            if select.select([self.fd], [], [], left)[0]:
                chunk = os.read(self.fd, 65536)
                assert chunk, "the stream ended"
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


def events_json(lpd, *args):
    out = lpd.lpctl("--json", "events", *args, timeout=120).stdout
    return out, [json.loads(line) for line in out.splitlines()]


def seqs(events):
    return [e["data"]["seq"] for e in events]


def test_events_and_runs_page_over_a_history_larger_than_a_mib(lpd):
    count = 400  # 400 x ~3 KB of argv: over 1 MiB of runs, and of events
    run_ids = [make_run(lpd)[0] for _ in range(count)]
    wait_ended(lpd, run_ids)

    # One raw page: bounded however much history there is, with a cursor.
    client = lpd.client()
    page = client.request("events.list")
    assert page["ok"], page
    assert len(json.dumps(page)) < MIB // 2 + 64 * 1024
    assert page["result"]["next"] is not None
    runs_page = client.request("run.list", all=True)
    assert len(json.dumps(runs_page)) < MIB // 2 + 64 * 1024
    assert runs_page["result"]["next"] is not None
    client.close()

    for attempt in ("live", "after a restart: every event from the journal"):
        out, events = events_json(lpd)
        assert len(out) > MIB, attempt
        started = [e["data"]["run_id"] for e in events if e["event"] == "run.started"]
        assert started == run_ids, attempt
        assert seqs(events) == sorted(set(seqs(events))), attempt  # increasing, none twice

        listed = lpd.lpctl("--json", "runs", "-a", timeout=120).stdout
        assert len(listed) > MIB
        runs = json.loads(listed)  # one valid JSON array, written page by page
        assert [r["run_id"] for r in runs] == run_ids
        assert all(r["argv"][1] == BIG_ARG for r in runs)

        human = lpd.lpctl("runs", "-a", timeout=120).stdout.splitlines()
        assert len(human) == count + 1  # the header, once
        lpd.stop()
        lpd.start()


def test_seq_keeps_increasing_across_graceful_and_kill9_restarts(lpd):
    first, _ = make_run(lpd)
    wait_ended(lpd, [first])
    _, before = events_json(lpd)
    last = max(seqs(before))

    lpd.stop()  # graceful
    lpd.start()
    second, _ = make_run(lpd)
    wait_ended(lpd, [second])
    _, after_graceful = events_json(lpd, "--since", str(last))
    assert [e["data"]["run_id"] for e in after_graceful] == [second, second]
    assert min(seqs(after_graceful)) > last

    last = max(seqs(after_graceful))
    lpd.kill9()  # no chance to write anything more
    lpd.start()
    third, _ = make_run(lpd)
    wait_ended(lpd, [third])
    _, everything = events_json(lpd)
    assert seqs(everything) == sorted(set(seqs(everything)))
    assert [e["data"]["run_id"] for e in everything if e["event"] == "run.started"] == [first, second, third]
    third_seqs = [e["data"]["seq"] for e in everything if e["data"].get("run_id") == third]
    assert min(third_seqs) > last

    # --since across both restarts: exactly the events after it, in order.
    cut = seqs(before)[0]
    _, since = events_json(lpd, "--since", str(cut))
    assert since == [e for e in everything if e["data"]["seq"] > cut]


def test_follow_since_sends_history_then_live_without_gap_or_repeat(lpd):
    first, _ = make_run(lpd)
    wait_ended(lpd, [first])
    lpd.stop()
    lpd.start()
    second, _ = make_run(lpd)
    wait_ended(lpd, [second])
    follow = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "--json", "events", "--follow", "--since", "0"],
                              stdout=subprocess.PIPE, env=lpd.env())
    lines = LineReader(follow.stdout.fileno())
    try:
        got = []
        while len(got) < 4:  # started and ended of both runs: the journal of two lifetimes
            got.append(lines.line())
        assert [(e["event"], e["data"]["run_id"]) for e in got] == [
            ("run.started", first), ("run.ended", first), ("run.started", second), ("run.ended", second)]
        third, _ = make_run(lpd)  # live now
        while len(got) < 6:
            got.append(lines.line())
        assert [e["data"]["run_id"] for e in got[4:]] == [third, third]
        assert seqs(got) == sorted(set(seqs(got)))
    finally:
        follow.kill()
        follow.wait()


def test_an_attach_whose_run_retention_removes_says_its_output_was_cut(lpd):
    """Stop 34's second attack: `lpctl attach` of a run that retention
    removed mid-replay printed 0.9 of its 22.9 MB and ended as if that were
    all. The replay now ends with a line saying why, then the run's end."""
    big = lpd.lpctl("run", "--", "sh", "-c", "seq 1 3000000")
    assert big.returncode == 0
    (run,) = lpd.lpctl_json("runs", "-a")
    lpd.lpctl("run", "--", "true")
    attach = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "attach", run["run_id"]],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=lpd.env())
    try:
        assert attach.stdout.read(2) == b"1\n"  # replaying: the pipe, not lpd, holds it back now
        assert lpd.lpctl("prune", "--keep-runs", "1").stdout.splitlines() == [f"removed {run['run_id']}"]
        out, err = attach.communicate(timeout=120)
    finally:
        if attach.poll() is None:
            attach.kill()
            attach.communicate()
    assert len(out) < 22_888_896 - 2  # seq 1 3000000 is 22,888,896 bytes
    assert out.rstrip().endswith(b"while this replay was under way: the rest of its output is gone]"), out[-300:]
    assert b"size cap" not in out  # not blamed on the output cap
    assert attach.returncode == 0, err  # the run's own end: it exited 0


def test_follow_since_past_the_last_seq_is_refused_not_answered_with_lower_seqs(lpd):
    """Stop 33's attack: `--follow --since` beyond the last seq went live
    and pushed seqs below it, against "only events after SEQ"."""
    first, _ = make_run(lpd)
    wait_ended(lpd, [first])
    last = max(seqs(events_json(lpd)[1]))
    refused = lpd.lpctl("--json", "events", "--follow", "--since", str(last + 1000), check=False, timeout=60)
    assert refused.returncode == 1 and refused.stdout == "", (refused.stdout, refused.stderr)
    assert f"is past the last event published (seq {last})" in refused.stderr, refused.stderr
    assert "bad_request" in refused.stderr
    # A listing is refused the same way, not answered "nothing after it" (exit 0).
    listed = lpd.lpctl("--json", "events", "--since", str(last + 1000), check=False, timeout=60)
    assert listed.returncode == 1 and listed.stdout == "", (listed.stdout, listed.stderr)
    assert f"is past the last event published (seq {last})" in listed.stderr, listed.stderr
    negative = lpd.lpctl("events", "--since", "-1", check=False)  # lpctl's own usage error, never sent
    assert negative.returncode == 64 and "a seq is 0 or more, not -1" in negative.stderr, negative.stderr
    # The last seq itself is a cursor lpd gave out: follow from it, nothing before.
    follow = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "--json", "events", "--follow", "--since", str(last)],
                              stdout=subprocess.PIPE, env=lpd.env())
    lines = LineReader(follow.stdout.fileno())
    try:
        second, _ = make_run(lpd)
        got = [lines.line(), lines.line()]
        assert [e["data"]["run_id"] for e in got] == [second, second]
        assert min(seqs(got)) > last
    finally:
        follow.kill()
        follow.wait()


def test_follow_rides_out_restarts_without_gap_or_repeat(lpd):
    """`lpctl events --follow` keeps following when lpd restarts (gracefully,
    or killed with -9): it waits for lpd, says so on stderr, and goes on
    after the last event it printed: the events of runs that came and went
    while it was reconnecting are there, none twice."""
    first, _ = make_run(lpd)
    wait_ended(lpd, [first])
    follow = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "--json", "events", "--follow",
                               "--type", "run."], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=lpd.env())
    lines = LineReader(follow.stdout.fileno())
    try:
        got = [lines.line(), lines.line()]  # the replay: first's started and ended
        assert [(e["event"], e["data"]["run_id"]) for e in got] == [("run.started", first), ("run.ended", first)]
        expected = [first, first]
        for restart in (lpd.stop, lpd.kill9):
            restart()
            lpd.start()
            # Made before lpctl is back (it retries within a second): it
            # gets these from the journal, not live.
            run_id, _ = make_run(lpd)
            wait_ended(lpd, [run_id])
            expected += [run_id, run_id]
            while len(got) < len(expected):
                got.append(lines.line())
        live, _ = make_run(lpd)  # and live again afterwards
        expected += [live, live]
        while len(got) < len(expected):
            got.append(lines.line())
        assert [e["data"]["run_id"] for e in got] == expected
        assert [e["event"] for e in got] == ["run.started", "run.ended"] * (len(expected) // 2)
        assert seqs(got) == sorted(set(seqs(got)))
    finally:
        follow.kill()
        _, err = follow.communicate(timeout=60)
    text = err.decode()
    assert "lpctl: lost lpd" in text and "waiting for it to come back" in text, text
    assert "lpctl: lpd is back; following events again" in text, text


def test_retention_at_start_removes_the_oldest_ended_runs_never_an_active_one(lpd_unstarted):
    lpd = lpd_unstarted
    now = time.time()
    # The oldest run is still active: its controller (this test) is alive.
    active = seed_run(lpd.state_dir, "active-oldest", now - 5000, pid=os.getpid())
    ended = [seed_run(lpd.state_dir, f"ended-{n}", now - 4000 + n * 100, ended_at=now - 3900 + n * 100)
             for n in range(4)]
    lpd.start("--keep-runs", "2")
    runs = {r["run_id"]: r["status"] for r in lpd.lpctl_json("runs", "-a")}
    assert runs == {"active-oldest": "active", "ended-3": "ended"}
    assert os.path.isdir(active) and os.path.isdir(ended[3])
    for gone in ended[:3]:
        assert not os.path.exists(gone)


def test_retention_by_days_at_start(lpd_unstarted):
    lpd = lpd_unstarted
    now = time.time()
    old = seed_run(lpd.state_dir, "old", now - 10 * 86400, ended_at=now - 9 * 86400)
    recent = seed_run(lpd.state_dir, "recent", now - 3 * 86400, ended_at=now - 2 * 86400)
    lpd.start("--keep-days", "7")
    assert [r["run_id"] for r in lpd.lpctl_json("runs", "-a")] == ["recent"]
    assert not os.path.exists(old) and os.path.isdir(recent)


def test_prune_dry_run_removes_nothing_and_prune_removes_links_not_their_targets(lpd):
    run_ids = [make_run(lpd, argv=["pytest", f"run{n}"])[0] for n in range(3)]
    wait_ended(lpd, run_ids)
    precious_dir = os.path.join(lpd.root, "precious")
    os.makedirs(precious_dir)
    precious = os.path.join(precious_dir, "file")
    with open(precious, "w") as f:
        f.write("keep me")
    oldest = os.path.join(lpd.state_dir, "runs", run_ids[0])
    os.symlink(precious, os.path.join(oldest, "link-to-file"))
    os.symlink(precious_dir, os.path.join(oldest, "link-to-dir"))
    os.makedirs(os.path.join(oldest, "nested", "deeper"))
    os.symlink(precious_dir, os.path.join(oldest, "nested", "deeper", "link"))

    dry = lpd.lpctl("prune", "--dry-run", "--keep-runs", "1").stdout
    assert dry.splitlines() == [f"would remove {run_ids[0]}", f"would remove {run_ids[1]}"]
    assert [r["run_id"] for r in lpd.lpctl_json("runs", "-a")] == run_ids
    assert all(os.path.isdir(os.path.join(lpd.state_dir, "runs", r)) for r in run_ids)

    removed = [json.loads(line) for line in lpd.lpctl("--json", "prune", "--keep-runs", "1").stdout.splitlines()]
    assert [r["run_id"] for r in removed] == run_ids[:2]
    assert all("error" not in r for r in removed)
    assert [r["run_id"] for r in lpd.lpctl_json("runs", "-a")] == run_ids[2:]
    assert not os.path.exists(oldest) and not os.path.exists(os.path.join(lpd.state_dir, "runs", run_ids[1]))
    with open(precious) as f:
        assert f.read() == "keep me"
    assert os.listdir(precious_dir) == ["file"]
    # Their events leave the history too.
    _, events = events_json(lpd)
    assert {e["data"]["run_id"] for e in events if "run_id" in e["data"]} == {run_ids[2]}
    assert lpd.lpctl("prune", "--keep-runs", "1").stdout.strip() == "nothing to prune"
    # And stay out after a restart, though the journal still holds them
    # until its compaction (they came back, up to 30 s, before).
    lpd.stop()
    lpd.start()
    _, events = events_json(lpd)
    assert {e["data"]["run_id"] for e in events if "run_id" in e["data"]} == {run_ids[2]}
    # A removed run is not_found, not an empty list (stop 34's attack).
    gone = lpd.lpctl("--json", "events", "--run-id", run_ids[0], check=False)
    assert gone.returncode == 1 and gone.stdout == "" and "[not_found]" in gone.stderr, gone


def test_a_dry_run_lists_every_run_the_prune_would_remove_past_one_page(lpd_unstarted):
    """The attack: a dry run stopped at its first page of 1,000 runs while the
    prune then removed 2,990; it lists every one, page after page."""
    lpd = lpd_unstarted
    now = time.time()
    ids = [f"seeded-{n:05d}" for n in range(2_500)]
    for n, run_id in enumerate(ids):
        seed_run(lpd.state_dir, run_id, now - 9000 + n, ended_at=now - 8000 + n)
    lpd.start("--keep-runs", "0", "--keep-days", "0")
    dry = lpd.lpctl("prune", "--dry-run", "--keep-runs", "10").stdout.splitlines()
    assert len(dry) == 2_490
    assert sorted(dry) == sorted(f"would remove {r}" for r in ids[:2_490])
    assert len(lpd.lpctl_json("runs", "-a")) == 2_500  # nothing removed
    dry_json = [json.loads(line)["run_id"] for line in
                lpd.lpctl("--json", "prune", "--dry-run", "--keep-runs", "10").stdout.splitlines()]
    assert sorted(dry_json) == ids[:2_490]
    removed = lpd.lpctl("prune", "--keep-runs", "10").stdout.splitlines()
    assert sorted(removed) == sorted(f"removed {r}" for r in ids[:2_490])
    assert sorted(r["run_id"] for r in lpd.lpctl_json("runs", "-a")) == ids[2_490:]
    # skip pages a dry run only: a prune that removes pages by removing.
    client = lpd.client()
    reply = client.request("prune", keep_runs=1, skip=3)
    assert reply["error"]["code"] == "bad_request", reply
    assert "skip" in reply["error"]["message"]
    client.close()


def test_an_active_run_is_never_pruned(lpd):
    ended, _ = make_run(lpd)
    wait_ended(lpd, [ended])
    active, controller = make_run(lpd, close=False)
    try:
        out = lpd.lpctl("prune", "--keep-runs", "1", "--keep-days", "0").stdout
        assert out.splitlines() == [f"removed {ended}"]
        runs = lpd.lpctl_json("runs", "-a")
        assert [(r["run_id"], r["status"]) for r in runs] == [(active, "active")]
        # Only the active run is left: over no limit, and never removed anyway.
        assert lpd.lpctl("prune", "--keep-runs", "1").stdout.strip() == "nothing to prune"
    finally:
        controller.close()


def test_prune_all_removes_every_ended_run_whatever_the_limits_and_never_an_active_one(lpd):
    # The attack's F8: 0 is "no limit" for both keep options, so removing
    # every ended run took a tiny --keep-days.
    ended = []
    for _ in range(3):
        run_id, _ = make_run(lpd)
        ended.append(run_id)
    wait_ended(lpd, ended)
    active, controller = make_run(lpd, close=False)
    try:
        dry = lpd.lpctl("prune", "--all", "--dry-run").stdout
        assert dry.splitlines() == [f"would remove {r}" for r in ended], dry
        out = lpd.lpctl("prune", "--all").stdout
        assert out.splitlines() == [f"removed {r}" for r in ended], out
        assert [r["run_id"] for r in lpd.lpctl_json("runs", "-a")] == [active]
        both = lpd.lpctl("prune", "--all", "--keep-runs", "5", check=False)
        assert both.returncode == 64 and "excludes" in both.stderr, both.stderr
        raw = lpd.client().request("prune", all=True, keep_days=1)
        assert raw["error"]["code"] == "bad_request" and "takes no keep_runs or keep_days" in raw["error"]["message"]
    finally:
        controller.close()


def test_a_pruned_supervised_run_is_not_found_never_reported_green(lpd, tmp_path):
    """Stop 33's attack: once retention removed a run that crashed, lpctl
    report gave an empty JUnit (tests="0", no error) and exit 0, attach
    failed `internal` on the log that was gone, and the run's job (its
    whole environment) stayed in lpd's memory until it stopped. A removed
    run is now gone from every operation: not_found, exit 1."""
    crashed = lpd.lpctl("run", "--", "sh", "-c", "kill -SEGV $$", check=False)
    assert crashed.returncode == -11, crashed.stderr  # lpctl ends by the signal the run did
    (run,) = lpd.lpctl_json("runs", "-a")
    run_id = run["run_id"]
    junit = tmp_path / "before.xml"
    lpd.lpctl("report", run_id, "--junit", str(junit))
    assert 'errors="1"' in junit.read_text()
    lpd.lpctl("run", "--", "true")
    assert lpd.lpctl("prune", "--keep-runs", "1").stdout.splitlines() == [f"removed {run_id}"]

    after = tmp_path / "after.xml"
    for argv in (["report", run_id, "--junit", str(after)], ["report", run_id, "--junit", "-"],
                 ["attach", run_id], ["stop", run_id], ["events", "--run-id", run_id],
                 ["events", "--run-id", run_id, "--follow"], ["crashes", "--run-id", run_id]):
        result = lpd.lpctl(*argv, check=False)
        assert result.returncode == 1, (argv, result.stdout, result.stderr)
        assert "not_found" in result.stderr, (argv, result.stderr)
        assert "<testsuite" not in result.stdout, argv
    assert not after.exists()
    assert "internal" not in lpd.log_text() and "[error]" not in lpd.log_text(), lpd.log_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a root lpd and a throwaway user")
def test_a_user_cannot_prune_another_users_runs():
    import pwd
    user = "lpdhist_b"
    user_admin(["userdel", "-r", user], capture_output=True)
    user_admin(["useradd", "-M", "-s", "/bin/sh", user], check=True)
    lpd = Lpd()
    tools = None
    try:
        entry = pwd.getpwnam(user)
        os.chmod(lpd.root, 0o755)
        now = time.time()
        for n in range(3):  # root's ended runs
            seed_run(lpd.state_dir, f"root-{n}", now - 1000 + n, ended_at=now - 900 + n, owner=0)
        seed_run(lpd.state_dir, "b-old", now - 800, ended_at=now - 700, owner=entry.pw_uid)
        seed_run(lpd.state_dir, "b-new", now - 600, ended_at=now - 500, owner=entry.pw_uid)
        lpd.start()
        os.chmod(lpd.socket, 0o666)  # only for this test: the throwaway user may connect
        tools = os.path.join("/tmp", f"lpd-hist-tools-{os.getpid()}")
        os.makedirs(tools, exist_ok=True)
        os.chmod(tools, 0o755)
        lpctl = os.path.join(tools, "lpctl")
        shutil.copy2(LPCTL_BIN, lpctl)
        os.chmod(lpctl, 0o755)

        def as_b(*args):
            return subprocess.run([lpctl, "--socket", lpd.socket, *args], user=entry.pw_uid, group=entry.pw_gid,
                                  extra_groups=[], cwd="/", env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                                  text=True, timeout=60)

        dry = as_b("prune", "--dry-run", "--keep-runs", "1")
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.splitlines() == ["would remove b-old"]  # b's own runs only, counted among b's own
        done = as_b("prune", "--keep-runs", "1")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["removed b-old"]
        assert [r["run_id"] for r in lpd.lpctl_json("runs", "-a")] == ["root-0", "root-1", "root-2", "b-new"]
        assert as_b("prune", "--keep-runs", "1").stdout.strip() == "nothing to prune"
        # Root prunes everyone's, each user's runs counted apart: root keeps its
        # newest, and b's one run is not pushed out by root's.
        assert lpd.lpctl("prune", "--keep-runs", "1").stdout.splitlines() == [
            "removed root-0", "removed root-1"]
        assert [r["run_id"] for r in lpd.lpctl_json("runs", "-a")] == ["root-2", "b-new"]
    finally:
        if lpd.proc is not None:
            lpd.stop()
        shutil.rmtree(lpd.root, ignore_errors=True)
        if tools:
            shutil.rmtree(tools, ignore_errors=True)
        user_admin(["userdel", "-r", user], capture_output=True)


def test_prune_keep_days_out_of_range_is_refused_in_days(lpd):
    # h13days (issue 13, attack finding): the refusal named seconds.
    refused = lpd.lpctl("prune", "--dry-run", "--keep-days", "1e308", check=False)
    assert refused.returncode == 1
    assert 'field "keep_days" must be a number of days between 0 and 36500 [bad_request]' in refused.stderr
    assert lpd.lpctl("prune", "--dry-run", "--keep-days", "36500").stdout.strip() == "nothing to prune"
