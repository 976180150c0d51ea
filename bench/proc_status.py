"""What /proc/PID/status says of a process's memory, for the benchmarks
that watch lpd's (idle_connections_bench.py, scale_bench.py)."""


def status_kib(pid, field):
    """The value of `field` (VmRSS, VmHWM, …) in /proc/`pid`/status, in KiB
    as the kernel prints it. Raises RuntimeError when the file has no such line."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")
