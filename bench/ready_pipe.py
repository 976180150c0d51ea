"""lpd's readiness pipe (`lpd start --foreground --ready-fd FD`), read the
way the benchmarks that start lpd wait for it (scale_bench.py,
lpd_instructions_bench.py): an event, never a sleep."""

import os
import select
import time


def read_readiness(read_fd, deadline):
    """What lpd wrote to its readiness pipe until it closed it ("READY
    <pid>" or "ERROR <why>"), or None when `deadline` (time.monotonic())
    passed first. Closes `read_fd` either way."""
    report = b""
    try:
        while True:
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            data = os.read(read_fd, 4096)
            if not data:
                return report
            report += data
    finally:
        os.close(read_fd)
