"""h15lp (issue 15): a --pause-dir is the user's directory, so everything
in it is hostile to lpd: links, FIFOs and huge files planted where lpd
writes or reads. lpd (through its pause directory agent, as the user)
follows no link, waits on no FIFO, reads a bounded amount, and keeps
serving; the victim files stay untouched."""

import json
import os

from lpd_harness import write_tests
from live_pause_compat import (compat_env, live_pause, start_checkpoint_session, start_compat_pytest,
                               wait_for_event_line, wait_for_file, write_command)

CHECKPOINTS = """
from pytest_live_pause import checkpoint

def test_one():
    assert checkpoint(task="one", timeout=300).result is True

def test_two():
    assert checkpoint(task="two", timeout=300).result is True
"""


def victim_file(work_dir):
    path = os.path.join(work_dir, "victim.txt")
    with open(path, "w") as f:
        f.write("precious\n")
    return path


def assert_untouched(path):
    with open(path) as f:
        assert f.read() == "precious\n"


def refused_setup(lpd, work_dir, pause_dir, run_id=None):
    write_tests(work_dir, "test_ok.py", "def test_ok():\n    pass\n")
    env = compat_env(lpd, LPD_RUN_ID=run_id) if run_id else compat_env(lpd)
    proc = start_compat_pytest(lpd, work_dir, "--pause-dir", pause_dir, env=env)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 4, out  # pytest's usage error: nothing ran
    return out


def test_a_link_at_the_pause_dir_is_refused(lpd, work_dir):
    victim = os.path.join(work_dir, "victim")
    os.mkdir(victim)
    link = os.path.join(work_dir, "pd")
    os.symlink(victim, link)
    out = refused_setup(lpd, work_dir, link)
    assert f"{link}: is a symbolic link" in out, out
    assert os.listdir(victim) == []
    lpd.ping()


def test_a_link_or_fifo_below_the_pause_dir_is_refused(lpd, work_dir):
    victim = os.path.join(work_dir, "victim")
    os.mkdir(victim)
    pause_dir = os.path.join(work_dir, "pd")
    run_dir = os.path.join(pause_dir, "runs", "planted-run")
    os.makedirs(run_dir, mode=0o700)
    os.symlink(victim, os.path.join(run_dir, "commands"))
    out = refused_setup(lpd, work_dir, pause_dir, run_id="planted-run")
    assert "commands: is a symbolic link" in out, out
    assert os.listdir(victim) == []
    # A FIFO where runs/ goes: refused at once, nothing waits on it.
    other = os.path.join(work_dir, "pd2")
    os.mkdir(other, 0o700)
    os.mkfifo(os.path.join(other, "runs"))
    out = refused_setup(lpd, work_dir, other)
    assert "runs: is not a directory" in out, out
    lpd.ping()


def test_links_and_fifos_where_lpd_writes_are_replaced_not_followed(lpd, work_dir):
    victim = victim_file(work_dir)
    pause_dir = os.path.join(work_dir, "pd")
    run_dir = os.path.join(pause_dir, "runs", "planted-files")
    os.makedirs(os.path.join(run_dir, "pauses"), mode=0o700)
    os.chmod(pause_dir, 0o700)
    os.chmod(os.path.join(pause_dir, "runs"), 0o700)
    os.symlink(victim, os.path.join(run_dir, "run.json"))
    os.mkfifo(os.path.join(run_dir, "events.jsonl"))  # nobody reads it: a blocking open would hang lpd
    waiter, proc, seen, run_id = start_checkpoint_session(lpd, work_dir, CHECKPOINTS, pause_dir,
                                                         env=compat_env(lpd, LPD_RUN_ID="planted-files"))
    assert run_id == "planted-files"
    pauses = os.path.join(run_dir, "pauses")
    for plant in ("link", "fifo"):
        pause_id = waiter.wait("pause.created", run_id="planted-files")["pause_id"]
        pause_file = os.path.join(pauses, pause_id + ".json")
        wait_for_file(pause_file)
        os.unlink(pause_file)
        if plant == "link":
            os.symlink(victim, pause_file)
        else:
            os.mkfifo(pause_file)
        result = live_pause(lpd, "resume", pause_id, "--result", "true")
        assert result.returncode == 0, result.stderr
        record = wait_for_file(pause_file, lambda r: r.get("status") == "resumed")
        assert record["pause_id"] == pause_id and not os.path.islink(pause_file)
    out = "".join(seen) + proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    assert_untouched(victim)
    assert not os.path.islink(os.path.join(run_dir, "run.json"))
    assert json.load(open(os.path.join(run_dir, "run.json")))["run_id"] == "planted-files"
    assert os.path.exists(os.path.join(run_dir, "events.jsonl"))  # still the FIFO: never opened for writing
    assert "cannot append" in lpd.log_text() and "not a regular file" in lpd.log_text()
    lpd.ping()
    waiter.close()


def test_hostile_command_files_are_refused_and_the_pause_waits(lpd, work_dir):
    victim_command = os.path.join(work_dir, "decision.json")
    with open(victim_command, "w") as f:
        json.dump({"result": False, "reason": "through a link"}, f)
    pause_dir = os.path.join(work_dir, "pd")
    waiter, proc, seen, run_id = start_checkpoint_session(lpd, work_dir, CHECKPOINTS, pause_dir)
    run_dir = os.path.join(pause_dir, "runs", run_id)
    commands = os.path.join(run_dir, "commands")
    pause_id = waiter.wait("pause.created", run_id=run_id)["pause_id"]
    name = os.path.join(commands, pause_id + ".resume.json")

    os.symlink(victim_command, name)
    wait_for_event_line(run_dir, "pause.command_rejected", pause_id=pause_id,
                        message=f"{name} is a symbolic link; lpd does not follow it")
    os.unlink(name)
    fifo = os.path.join(work_dir, "fifo")
    os.mkfifo(fifo)
    os.rename(fifo, name)  # renamed into place: inotify reports it, and lpd must not wait on it
    wait_for_event_line(run_dir, "pause.command_rejected", pause_id=pause_id, message=f"{name} is not a regular file")
    os.unlink(name)
    write_command(commands, pause_id, " " * (1024 * 1024) + json.dumps({"result": True}))
    wait_for_event_line(run_dir, "pause.command_rejected", pause_id=pause_id, message=f"{name} is larger than 64 KiB")
    # A command for a pause of another run (or none) is not this directory's to give.
    write_command(commands, "0123456789abcdef", {"result": True})
    line = wait_for_event_line(run_dir, "pause.command_rejected", pause_id="0123456789abcdef")
    assert "no pause" in line["message"]
    pending = live_pause(lpd, "ls")
    assert pause_id in pending.stdout and "pending" in pending.stdout
    lpd.ping()

    write_command(commands, pause_id, {"result": True, "reason": "ok"})
    assert waiter.wait("pause.resumed", pause_id=pause_id)["result"] is True
    second = waiter.wait("pause.created", run_id=run_id)["pause_id"]
    write_command(commands, second, {"result": True})
    waiter.wait("pause.resumed", pause_id=second)
    out = "".join(seen) + proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    waiter.close()


def test_the_agent_holds_no_descriptor_of_lpds(lpd, work_dir):
    """The process writing in the user's directory keeps /dev/null for
    stdio, its line to lpd, its inotify and the run's directories: nothing
    else of lpd's (its socket, state, log, other connections)."""
    import re
    pause_dir = os.path.join(work_dir, "pd")
    waiter, proc, seen, run_id = start_checkpoint_session(lpd, work_dir, CHECKPOINTS, pause_dir)
    match = re.search(rf"run {run_id}: pauses mirrored into \S+ \(agent pid (\d+)\)", lpd.log_text())
    assert match, lpd.log_text()
    agent = int(match.group(1))
    run_dir = os.path.join(pause_dir, "runs", run_id)
    targets = {fd: os.readlink(f"/proc/{agent}/fd/{fd}") for fd in os.listdir(f"/proc/{agent}/fd")}
    allowed = {"/dev/null", run_dir, run_dir + "/pauses", run_dir + "/commands", "anon_inode:inotify"}
    for fd, target in targets.items():
        assert target in allowed or target.startswith("socket:"), (fd, target, targets)
    assert sum(t.startswith("socket:") for t in targets.values()) == 1, targets
    assert all(targets[str(fd)] == "/dev/null" for fd in range(3)), targets
    for _ in range(2):
        pause_id = waiter.wait("pause.created", run_id=run_id)["pause_id"]
        assert live_pause(lpd, "resume", pause_id, "--result", "true").returncode == 0
    assert proc.communicate(timeout=120)[0] is not None and proc.returncode == 0
    waiter.close()
