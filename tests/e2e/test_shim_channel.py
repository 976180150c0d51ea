"""The pytest shim's channel (shim/python/lpd_pytest/channel.py) against a
real lpd and a real pytest: what it does when the event ring fills while
lpd is away.

The suite is held at two FIFO gates, so the kill and the restart happen at
known points of the run whatever the machine's speed: the first test
finished, lpd is SIGKILLed, then the gate opens and the tests in between
write far more than the ring holds (long nodeids) while nobody reads it;
the last test waits at the second gate until a new lpd is up."""

import json
import mmap
import os
import shutil
import struct
import sys
import threading

import pytest

from lpd_harness import SHIM_PYTHONPATH, EventWaiter, Lpd, start_pytest, wait_until_in_directory, write_tests
from test_shim_outcomes import journal_finishes

sys.path[:0] = SHIM_PYTHONPATH.split(os.pathsep)

from lpd_pytest import event_ring, messages  # noqa: E402

FLOOD = 300
ID_LENGTH = 1000

SUITE = f'''
import os

import pytest

GATES = os.environ["CHANNEL_GATES"]


def test_a_first():
    pass


def test_b_gate_after_the_kill():
    with open(os.path.join(GATES, "killed")) as gate:  # blocks until lpd is gone
        gate.read()


@pytest.mark.parametrize("i", range({FLOOD}), ids=lambda i: f"{{i:04d}}-" + "x" * {ID_LENGTH})
def test_c_flood(i):
    pass


def test_d_gate_until_lpd_is_back():
    with open(os.path.join(GATES, "restarted")) as gate:  # blocks until a new lpd is up
        gate.read()
'''


def open_when_read(fifo, timeout=120):
    """Opens `fifo` for writing, which returns once the suite opened it for
    reading (the test at that gate has come); returns the descriptor. If
    no test comes within `timeout` seconds (the run broke before it),
    TimeoutError instead of a hang."""
    opened = []
    opener = threading.Thread(target=lambda: opened.append(os.open(fifo, os.O_WRONLY)))
    opener.start()
    opener.join(timeout)
    if opener.is_alive():
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets the opener return
        opener.join()
        os.close(reader)
        os.close(opened[0])
        raise TimeoutError(f"no test opened {fifo} within {timeout} s")
    return opened[0]


def start_when_waited_for(lpd, fifo):
    """Starts `lpd` once the suite's test waits at `fifo`, then lets it go
    on: that test and the rest run under the new lpd."""
    gate = open_when_read(fifo)
    try:
        lpd.start()
    finally:
        os.close(gate)


def clean_up(proc, lpd):
    """Ends what a test here started: its pytest (when still running), its lpd and its files."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.communicate()
    lpd.stop()
    shutil.rmtree(lpd.root, ignore_errors=True)


def flood_nodeids():
    return [f"test_channel.py::test_c_flood[{i:04d}-{'x' * ID_LENGTH}]" for i in range(FLOOD)]


def test_a_ring_filled_while_lpd_is_away_is_delivered_with_the_queue_in_order(work_dir):
    """Ring full and lpd away: the channel queues behind the ring; the new
    lpd gets the same ring (read on from where the old one stopped), then
    the queue, so every test.finish is recorded once, in the order the
    tests ran, and pytest hears nothing of it."""
    nodeids = (["test_channel.py::test_a_first", "test_channel.py::test_b_gate_after_the_kill"]
               + flood_nodeids() + ["test_channel.py::test_d_gate_until_lpd_is_back"])
    # What the flood writes while nobody reads: far more than one ring, so
    # the replay queue is used, not only the ring.
    flood_bytes = sum(len(messages.encode_test_start(messages.quote(n)))
                      + len(messages.encode_test_finish(messages.quote(n), "passed", 0.001)) + 8
                      for n in flood_nodeids())
    assert flood_bytes > 2 * event_ring.DEFAULT_CAPACITY
    write_tests(work_dir, "test_channel.py", SUITE)
    gates = os.path.join(work_dir, "gates")
    os.mkdir(gates)
    for name in ("killed", "restarted"):
        os.mkfifo(os.path.join(gates, name))
    lpd = Lpd().start()
    proc = None
    try:
        events = EventWaiter(lpd, types=["test.finish"])
        proc = start_pytest(lpd, work_dir, "test_channel.py", env_extra={"CHANNEL_GATES": gates})
        run_id = events.wait("test.finish", nodeid="test_channel.py::test_a_first")["run_id"]
        events.close()
        lpd.kill9()
        # Opening a FIFO for writing waits for its reader: test_b, then,
        # after the whole flood, test_d.
        os.close(open_when_read(os.path.join(gates, "killed")))
        start_when_waited_for(lpd, os.path.join(gates, "restarted"))
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
        assert "INTERNALERROR" not in out and "lpd_pytest: warning" not in out, out
        assert f"{len(nodeids)} passed" in out, out
        assert journal_finishes(lpd.state_dir, run_id) == nodeids
    finally:
        clean_up(proc, lpd)


HANDOVER_SUITE = '''
import os

import pytest

GATES = os.environ["CHANNEL_GATES"]


@pytest.mark.parametrize("i", range(40))
def test_a_before(i):
    pass


def test_b_gate_after_the_kill():
    with open(os.path.join(GATES, "restarted")) as gate:  # blocks until a new lpd is up
        gate.read()


@pytest.mark.parametrize("i", range(5))
def test_c_after(i):
    pass
'''


def events_journal_finishes(events_dir, run_id):
    """The nodeids of `run_id`'s test.finish events in lpd's events journal
    (events/*.jsonl), in order; a last line still being written is skipped."""
    found = []
    for name in sorted(os.listdir(events_dir)):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(events_dir, name)) as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                event = json.loads(line)
                if event.get("event") == "test.finish" and event.get("run_id") == run_id:
                    found.append(event["data"]["nodeid"])
    return found


def ring_of(pid):
    """The path (under /proc) of process `pid`'s event ring memfd."""
    fd_dir = f"/proc/{pid}/fd"
    for name in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue
        if target.startswith("/memfd:lpd-event-ring"):
            return os.path.join(fd_dir, name)
    raise AssertionError(f"pid {pid} holds no event ring")


def cut_events_journal_after(events_dir, run_id, nodeid):
    """Cuts lpd's events journal after `run_id`'s test.finish of `nodeid`:
    what an lpd killed between its two writes of a batch leaves (the runs'
    journals first, then the events journal). Returns the lines cut."""
    for name in sorted(os.listdir(events_dir), reverse=True):
        if not name.endswith(".jsonl"):
            continue
        path = os.path.join(events_dir, name)
        with open(path, "rb") as f:
            lines = f.readlines()
        for i, line in enumerate(lines):
            event = json.loads(line)
            if event.get("event") == "test.finish" and event.get("run_id") == run_id \
                    and event["data"]["nodeid"] == nodeid:
                with open(path, "wb") as f:
                    f.writelines(lines[:i + 1])
                return len(lines) - i - 1
    raise AssertionError(f"no test.finish of {nodeid} in {events_dir}")


@pytest.mark.parametrize("batch_in", ["both journals", "the run's journal only"])
def test_a_ring_handed_to_a_restarted_lpd_is_not_recorded_twice(work_dir, batch_in):
    """lpd publishes a ring's read position only after its journal write;
    an lpd killed between the two leaves the next one the same ring at the
    old position, and it recorded those records again (a test.finish twice
    in the run's journal and report: 2 runs in 6 of this file's first test
    under ASan). Here the window is made as wide as it can be: once the
    journal holds every test before the gate, lpd is SIGKILLed and the
    ring's published read position set back to 0, as if no read had ever
    been committed. The restarted lpd must read on from where its
    predecessor's journal says, so each test is recorded once.

    lpd writes a batch to the runs' journals and then to its own events
    journal. Killed between the two, the batch was in the run's journal,
    with the ring marks saying it was recorded, and never in the events
    journal (`lpctl events` lost it for good). The second case leaves that
    state: the events journal is cut back after the 30th test. The next
    lpd must put the rest back, in order, once."""
    before = [f"test_handover.py::test_a_before[{i}]" for i in range(40)]
    nodeids = before + ["test_handover.py::test_b_gate_after_the_kill"] + [
        f"test_handover.py::test_c_after[{i}]" for i in range(5)]
    write_tests(work_dir, "test_handover.py", HANDOVER_SUITE)
    gates = os.path.join(work_dir, "gates")
    os.mkdir(gates)
    os.mkfifo(os.path.join(gates, "restarted"))
    lpd = Lpd().start()
    proc = None
    try:
        events = EventWaiter(lpd, types=["test.finish"])
        proc = start_pytest(lpd, work_dir, "test_handover.py", env_extra={"CHANNEL_GATES": gates})
        run_id = events.wait("test.finish", nodeid=before[0])["run_id"]
        events.close()
        run_dir = os.path.join(lpd.state_dir, "runs", run_id)
        assert wait_until_in_directory(run_dir, lambda: journal_finishes(lpd.state_dir, run_id) == before), (
            journal_finishes(lpd.state_dir, run_id))
        # ...and lpd's events journal, which lpd writes right after the
        # runs' journals in the same batch: the kill falls after both,
        # before the read position is published.
        events_dir = os.path.join(lpd.state_dir, "events")
        assert wait_until_in_directory(events_dir, lambda: events_journal_finishes(events_dir, run_id) == before), (
            events_journal_finishes(events_dir, run_id))
        lpd.kill9()
        if batch_in == "the run's journal only":
            assert cut_events_journal_after(events_dir, run_id, before[29]) >= 10
            assert events_journal_finishes(events_dir, run_id) == before[:30]
        ring_fd = os.open(ring_of(proc.pid), os.O_RDWR)
        try:
            with mmap.mmap(ring_fd, 64) as header:
                write, read = struct.unpack_from("<QQ", header, 8)
                # Never wrapped: every record is still there. The read
                # position may still be 0: lpd publishes it only after the
                # journal write this test waited for, and the kill can fall
                # between the two (the very window this test is about).
                assert 0 <= read <= write < event_ring.DEFAULT_CAPACITY
                struct.pack_into("<Q", header, 16, 0)
        finally:
            os.close(ring_fd)
        start_when_waited_for(lpd, os.path.join(gates, "restarted"))
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
        assert f"{len(nodeids)} passed" in out, out
        assert journal_finishes(lpd.state_dir, run_id) == nodeids
        assert "a previous lpd's journal already holds the records between" in lpd.log_text()
        # ...and so does lpd's events journal, where the records were published.
        listed = lpd.lpctl("--json", "events", "--run-id", run_id, "--type", "test.finish").stdout.splitlines()
        assert [json.loads(line)["data"]["nodeid"] for line in listed] == nodeids
        # Every event of the run, in both journals, the same seqs in the same order.
        every = [json.loads(line) for line in lpd.lpctl("--json", "events", "--run-id", run_id).stdout.splitlines()]
        seqs = [e["data"]["seq"] for e in every]
        assert seqs == sorted(set(seqs))
        with open(os.path.join(run_dir, "events.jsonl")) as f:
            journaled = [json.loads(line) for line in f]
        assert [e["seq"] for e in journaled if "seq" in e] == seqs
        if batch_in == "the run's journal only":
            assert "event(s) of the previous lpd's last batch were in its journal only" in lpd.log_text()
    finally:
        clean_up(proc, lpd)
