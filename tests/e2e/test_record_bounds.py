"""Issue 13's attack: a record accepted under the 1 MiB line limit could
grow past it once listed (a run.register with a 1 MB cwd, a helper with a
near-1 MiB argv and the process.* events carrying it, a pause with 1 MB of
failure text), and then `lpctl runs -a`, `lpctl events`, `lpctl ls -a` failed
`too_large` for every user of the host. Now every text field of a listed
record is bounded when lpd stores it: cut with a note where it is only shown
(hostname, a run's cwd and argv, a pause's texts), refused where lpd would
have to run it (a helper's argv and cwd, `lpctl run`'s cwd)."""

import json
import os
import subprocess

from lpd_harness import LPCTL_BIN, EventWaiter


def lpctl_ok(lpd, *args):
    """lpctl's --json output, asserting it exited 0 with no error: a list
    (`runs -a`, `ls`) or an object (`ps`) as one document, events one a line."""
    proc = lpd.lpctl("--json", *args, check=False, timeout=120)
    assert proc.returncode == 0, (args, proc.stderr[-2000:])
    assert "too_large" not in proc.stderr
    if args[0] == "events":
        return [json.loads(line) for line in proc.stdout.splitlines()]
    return json.loads(proc.stdout)


def test_a_run_registered_with_a_huge_cwd_and_hostname_is_listed_cut_and_the_lists_work(lpd):
    client = lpd.client()
    reply = client.request("run.register", argv=["pytest"] + ["a" * 4000] * 40, cwd="/" + "c" * 700_000,
                           hostname="h" * 100_000)
    assert reply["ok"], str(reply)[:500]
    run_id = reply["result"]["run_id"]
    # Each field as kept: its head, and what was left out.
    runs = lpctl_ok(lpd, "runs", "-a")
    (run,) = [r for r in runs if r["run_id"] == run_id]
    assert run["cwd"] == "/" + "c" * 4094 + " ... (700001 bytes, not kept)"
    assert run["hostname"] == "h" * 255 + " ... (100000 bytes, not kept)"
    assert run["argv"][-1].startswith("... ") and run["argv"][-1].endswith("bytes, not kept")
    assert len(json.dumps(run)) < 128 * 1024
    client.close()  # ends the run: run.ended goes out too
    events = lpctl_ok(lpd, "events", "--run-id", run_id)
    assert {e["event"] for e in events} >= {"run.started"}
    for e in events:
        assert len(json.dumps(e)) < 128 * 1024, e["event"]


def test_a_helper_whose_argv_or_cwd_is_too_long_is_refused_before_anything_starts(lpd, tmp_path):
    client = lpd.client()
    reply = client.request("proc.ensure", name="huge-argv", argv=["/bin/sleep", "1000", "x" * 300_000],
                           cwd=str(tmp_path), timeout=30)
    assert not reply["ok"]
    assert reply["error"]["code"] == "bad_request"
    assert reply["error"]["message"] == ("field \"argv\" is 300017 bytes; a helper's arguments may have at most "
                                         "262144")
    reply = client.request("proc.ensure", name="long-cwd", argv=["/bin/sleep", "1000"], cwd="/" + "d" * 5000,
                           timeout=30)
    assert not reply["ok"]
    assert reply["error"]["message"] == ("field \"cwd\" is 5001 bytes long; a path may have at most 4095 "
                                         "(PATH_MAX)")
    client.close()
    assert lpctl_ok(lpd, "ps", "-a") == {"processes": []}  # nothing was started
    lpctl_ok(lpd, "events")


def test_lpctl_run_of_a_command_with_a_huge_argv_runs_it_whole_and_lists_it_cut(lpd, tmp_path):
    # 300 arguments of 3 KB: under the kernel's limits, over a run's 64 KiB.
    args = [f"{i:03d}" + "y" * 3000 for i in range(300)]
    script = "import sys; print(len(sys.argv) - 1, sum(map(len, sys.argv[1:])))"
    proc = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", "python3", "-c", script, *args],
                          cwd=str(tmp_path), env=lpd.env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[0] == "300 900900"  # the command got every argument
    (run,) = lpctl_ok(lpd, "runs", "-a")
    assert run["argv"][:3] == ["python3", "-c", script]
    assert run["argv"][-1].endswith("bytes, not kept")
    assert len(json.dumps(run)) < 128 * 1024


def test_a_pause_with_megabytes_of_text_is_listed_cut(lpd):
    events = EventWaiter(lpd, types=["pause.created"])
    owner = lpd.client()
    run_id = owner.request("run.register", argv=["pytest"], cwd="/src", hostname="ci")["result"]["run_id"]
    owner.send_raw(json.dumps({"id": 99, "op": "pause.request", "run_id": run_id, "kind": "failure",
                               "nodeid": "t.py::test_x", "task": "t" * 400_000, "original_failure": "f" * 400_000,
                               "cwd": "/" + "c" * 100_000, "hostname": "h" * 1000, "timeout": 600}) + "\n")
    events.wait("pause.created", run_id=run_id)
    (pause,) = lpctl_ok(lpd, "ls")
    assert pause["original_failure"].endswith("(400000 bytes, not kept)")
    assert pause["task"].endswith("(400000 bytes, not kept)")
    assert pause["cwd"].endswith("(100001 bytes, not kept)")
    assert len(json.dumps(pause)) < 256 * 1024
    owner.close()
    events.close()
