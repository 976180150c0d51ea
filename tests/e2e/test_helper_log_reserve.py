"""Issue 14, h14fixA (attack finding 6): space a helper reserves past its
log's end (`fallocate --keep-size` on its own output) is given back once
the helper is killed, so it stops counting against its owner's other
logs. The log's bytes are unchanged.

Every wait is an event: lpctl's replies (`lpctl kill` answers once the
whole group is gone)."""

import json
import os
import shutil

import pytest

RESERVE = 64 * 1024 * 1024


@pytest.mark.skipif(shutil.which("fallocate") is None, reason="util-linux fallocate not installed")
def test_space_reserved_past_the_end_is_freed_by_kill(lpd, work_dir):
    script = f"fallocate -n -l {RESERVE} /proc/self/fd/1 && echo reserved && echo ready && exec sleep 600"
    reply = json.loads(lpd.lpctl("--json", "ensure", "hog", "--scope", work_dir, "--cwd", work_dir,
                                 "--pattern", "ready", "--", "sh", "-c", script).stdout)
    log = reply["log_path"]
    before = os.stat(log)
    if before.st_blocks * 512 < RESERVE:
        pytest.skip("this file system did not keep the reservation")
    lpd.lpctl("kill", "hog", "--scope", work_dir)
    after = os.stat(log)
    assert after.st_size == before.st_size
    assert after.st_blocks * 512 < 1024 * 1024, after
    with open(log) as f:
        assert f.read() == "reserved\nready\n"
