"""run.stop right after run.start: the stop reaches the command.

lpd-monitor forwards a stop to the command's process group; a stop sent
before it had forked the command used to be lost (the command then ended
by SIGKILL after the grace) or to kill the monitor itself. lpd now starts
the monitor with those signals blocked, and the monitor unblocks them once
the group exists, so the stop waits as a pending signal. The race is won
or lost in the monitor's first milliseconds, so each round sends the stop
as soon as run.start answers."""

import pytest

from lpd_harness import EventWaiter


@pytest.mark.parametrize("round_", range(5))
def test_a_stop_sent_as_soon_as_the_run_started_ends_the_command_with_that_signal(lpd, work_dir, round_):
    c = lpd.client()
    waiter = EventWaiter(lpd, types=["job"])
    started = c.request("run.start", argv=["sleep", "1000"], cwd=work_dir, runner="native")
    assert started["ok"], started
    run_id = started["result"]["run_id"]
    stopped = c.request("run.stop", run_id=run_id, grace=600)
    assert stopped["ok"], stopped
    # A lost SIGINT would end it only by SIGKILL 600 s later: this wait
    # for the end fails first.
    while True:
        event = waiter.wait("job", timeout=120, run_id=run_id)
        if event["payload"]["state"] == "done":
            break
    info = c.request("run.info", run_id=run_id)["result"]
    assert info["command_signal"] == 2, info
    assert info["stop_requested"], info
