"""h15lp: what the pytest-live-pause compatibility tests share: the
`pytest-live-pause` command of this build, and pytest started the way a
pytest-live-pause user starts it (`-p pytest_live_pause`)."""

import json
import os
import select
import subprocess
import time

from lpd_harness import LPCTL_BIN, PYTHON, SHIM_PYTHONPATH, EventWaiter, wait_until_in_directory, write_tests

BUILD_DIR = os.environ.get("LPD_BUILD_DIR") or os.path.dirname(os.path.abspath(LPCTL_BIN))
COMMAND = os.path.join(BUILD_DIR, "pytest-live-pause")


def live_pause(lpd, *args, timeout=120, env=None):
    """`pytest-live-pause ARGS` as a user types it (lpd's socket from LPD_SOCKET)."""
    return subprocess.run([COMMAND, *args], env=env if env is not None else lpd.env(), capture_output=True,
                          text=True, timeout=timeout)


def compat_env(lpd, **extra):
    env = lpd.env(PYTHONPATH=SHIM_PYTHONPATH)
    env.pop("PYTEST_PLUGINS", None)
    env.pop("LPD_RUN_ID", None)
    env.update(extra)
    return env


def start_compat_pytest(lpd, test_dir, *args, env=None, plugin_args=("-p", "pytest_live_pause")):
    """pytest with the plugin loaded by pytest-live-pause's name."""
    return subprocess.Popen([PYTHON, "-m", "pytest", "-p", "no:cacheprovider", *plugin_args, "-q", *args],
                            cwd=test_dir, env=env if env is not None else compat_env(lpd),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def start_checkpoint_session(lpd, work_dir, tests, pause_dir, env=None):
    """Writes `tests` as test_cp.py in `work_dir`, subscribes to pause
    events (before pytest starts, so none slips by) and starts pytest on it
    with pytest-live-pause's --pause-dir `pause_dir` (`env`: as
    start_compat_pytest's). Returns (waiter, proc, seen, run_id): `seen`
    holds pytest's output up to the line naming the run."""
    write_tests(work_dir, "test_cp.py", tests)
    waiter = EventWaiter(lpd, types=["pause."])
    proc = start_compat_pytest(lpd, work_dir, "--pause-dir", pause_dir, env=env)
    seen = []
    run_id = read_run_id(proc, seen)
    return waiter, proc, seen, run_id


def read_run_id(proc, seen, timeout=120):
    """Reads pytest's output (unbuffered, so nothing waits in a reader's
    buffer unseen) up to the header line naming the run; returns the run id.
    Everything read is appended to `seen`."""
    fd = proc.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        text = data.decode(errors="replace")
        for line in text.splitlines():
            if line.startswith("live pause: run_id "):
                seen.append(text)
                return line.split()[3].rstrip(";")
        left = deadline - time.monotonic()
        assert left > 0, "no header line within the timeout:\n" + text
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, "pytest ended before its header line:\n" + text
            data += chunk


def read_json(path):
    with open(path) as f:
        return json.load(f)


def wait_for_file(path, condition=lambda record: True, timeout=120):
    """Waits (inotify, no sleeping) until `path` holds JSON meeting `condition`."""
    def holds():
        try:
            return condition(read_json(path))
        except (OSError, ValueError):
            return False
    assert wait_until_in_directory(os.path.dirname(path), holds, timeout), f"{path} never held what was expected"
    return read_json(path)


def events_lines(run_dir):
    try:
        with open(os.path.join(run_dir, "events.jsonl")) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def wait_for_event_line(run_dir, event, timeout=120, **match):
    """The first line of run_dir/events.jsonl with this event and fields."""
    def find():
        for line in events_lines(run_dir):
            if line.get("event") == event and all(line.get(k) == v for k, v in match.items()):
                return line
        return None
    assert wait_until_in_directory(run_dir, lambda: find() is not None, timeout), (
        f"no {event} {match} in {run_dir}/events.jsonl: {events_lines(run_dir)}")
    return find()


def write_command(commands_dir, pause_id, body):
    """What pytest-live-pause's CLI does: commands/<pause_id>.resume.json,
    written beside and renamed into place."""
    temp = os.path.join(commands_dir, f".{pause_id}.tmp")
    with open(temp, "w") as f:
        f.write(body if isinstance(body, str) else json.dumps(body))
    os.rename(temp, os.path.join(commands_dir, f"{pause_id}.resume.json"))
