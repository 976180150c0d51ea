"""Issue 14 (h14owner): what lpctl's listings and kill-all say is what is
true. `lpctl ps` names each helper's OWNER; `lpctl runs` shows the pid of a
command that is not pytest (no shim told lpd one) from lpd-monitor's status,
and `-` (JSON null) when lpd does not know it, never 0; kill-all stops the
caller's own helpers of this project and says what it did with leased ones."""

import json
import os
import pwd
import shutil
import subprocess
import threading
import time

from lpd_harness import (LPCTL_BIN, EventWaiter, RawClient, answer_as_lpd, fake_lpd_listener, wait_gone,
                         wait_until_in_directory)

HELPER = ["--", "sh", "-c", "echo ready; exec sleep 600"]


def lpctl(lpd, *args, cwd, check=True):
    r = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, *args], capture_output=True, text=True, timeout=120,
                       env=lpd.env(), cwd=cwd)
    if check:
        assert r.returncode == 0, f"lpctl {args}: {r.returncode}\n{r.stdout}{r.stderr}"
    return r


def project(work_dir, name):
    path = os.path.join(work_dir, name)
    os.mkdir(path)
    open(os.path.join(path, "pyproject.toml"), "w").close()
    return path


def ensure(lpd, name, cwd, *extra):
    return json.loads(lpctl(lpd, "--json", "ensure", name, "--pattern", "^ready", *extra, *HELPER, cwd=cwd).stdout)


def alive(pid):
    return not wait_gone(pid, timeout=0)


def run_rows(lpd, *args, cwd):
    lines = lpctl(lpd, "runs", *args, cwd=cwd).stdout.splitlines()
    header = lines[0].split()
    return {row["RUN"]: row for row in (dict(zip(header, line.split(None, len(header) - 1))) for line in lines[1:])}


def test_ps_shows_each_helpers_owner(lpd, work_dir):
    here = project(work_dir, "p")
    started = ensure(lpd, "db", here)
    lines = lpctl(lpd, "ps", cwd=here).stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "OWNER", "SCOPE"]
    assert lines[1].split()[:4] == ["db", pwd.getpwuid(os.geteuid()).pw_name, ".", str(started["pid"])]
    # --owner filters, by name or uid; nobody else has helpers here.
    assert len(lpctl(lpd, "ps", "--owner", str(os.geteuid()), cwd=here).stdout.splitlines()) == 2
    assert lpctl(lpd, "ps", "--owner", "nobody", cwd=here).stdout.startswith("no running supervised processes of")
    assert json.loads(lpctl(lpd, "--json", "ps", "--owner", "nobody", cwd=here).stdout) == {"processes": []}
    lpctl(lpd, "kill", "db", cwd=here)


def test_runs_show_the_commands_pid_not_zero(lpd, work_dir):
    """A command that is not pytest registers no controller: its pid is the
    one lpd-monitor forked, shown while it runs and after it ended."""
    fifo = os.path.join(work_dir, "pid.fifo")
    os.mkfifo(fifo)
    started = json.loads(lpctl(lpd, "--json", "run", "--detach", "--", "sh", "-c",
                               f"echo $$ > {fifo}; exec sleep 600", cwd=work_dir).stdout)
    run_id = started["run_id"]
    with open(fifo) as f:  # blocks until the command itself says its pid
        pid = int(f.read())
    run_dir = os.path.join(lpd.state_dir, "runs", run_id)
    status = os.path.join(run_dir, "exit.json")
    # lpd-monitor writes its status once the command is forked: wait for that file (inotify).
    assert wait_until_in_directory(run_dir, lambda: os.path.exists(status))
    with open(status) as f:
        assert json.load(f)["pid"] == pid

    listed = {r["run_id"]: r for r in json.loads(lpctl(lpd, "--json", "runs", cwd=work_dir).stdout)}
    assert listed[run_id]["pid"] == pid
    assert run_rows(lpd, cwd=work_dir)[run_id]["PID"] == str(pid)

    ended_event = EventWaiter(lpd, types=["run.ended"], run_id=run_id)
    try:
        lpctl(lpd, "stop", run_id, "--grace", "0", cwd=work_dir)
        ended_event.wait("run.ended")
    finally:
        ended_event.close()
    assert wait_gone(pid)
    ended = {r["run_id"]: r for r in json.loads(lpctl(lpd, "--json", "runs", "-a", cwd=work_dir).stdout)}
    assert ended[run_id]["pid"] == pid and ended[run_id]["status"] != "active"
    assert run_rows(lpd, "-a", cwd=work_dir)[run_id]["PID"] == str(pid)
    assert "0" not in [row["PID"] for row in run_rows(lpd, "-a", cwd=work_dir).values()]


def test_a_run_whose_pid_lpd_does_not_know_shows_a_dash(lpd_unstarted, work_dir):
    """An ended run of a command lpd has no status for (its status file is
    gone): no pid is known, and none is made up."""
    d = lpd_unstarted
    run_id = "20260101-000000-abcdef"
    run_dir = os.path.join(d.state_dir, "runs", run_id)
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "run.json"), "w") as f:
        # Recent: retention (30 days) keeps it.
        json.dump({"run_id": run_id, "pid": 0, "owner_uid": os.geteuid(), "hostname": "", "cwd": "/",
                   "argv": ["make", "check"], "created_at": time.time() - 60, "ended_at": time.time() - 59,
                   "status": "ended", "supervised": True, "workers": []}, f)
    d.start()
    [listed] = json.loads(lpctl(d, "--json", "runs", "-a", cwd=work_dir).stdout)
    assert listed["run_id"] == run_id and listed["pid"] is None
    assert run_rows(d, "-a", cwd=work_dir)[run_id]["PID"] == "-"


def test_kill_all_is_this_projects_and_keeps_what_others_hold(lpd, work_dir):
    here, there = project(work_dir, "here"), project(work_dir, "there")
    free = ensure(lpd, "free", here)
    elsewhere = ensure(lpd, "free", there)
    holder = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "--json", "ensure", "--lease", "held",
                               "--pattern", "^ready", *HELPER], cwd=here, env=lpd.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        held = json.loads(holder.stdout.read())  # lpctl closes its stdout once the helper is ready
        assert held["holders"] == 1

        # Without --force: this project's free helper is stopped, the held
        # one is kept (and said so), the other project's is not touched.
        out = lpctl(lpd, "kill-all", cwd=here).stdout
        assert f"killed {free['full_name']} (pid {free['pid']})" in out, out  # h14fixB: by its full name
        assert f"kept {here}::held (pid {held['pid']}): 1 other connection(s) hold it" in out, out
        assert wait_gone(free["pid"]) and alive(held["pid"]) and alive(elsewhere["pid"])
        result = json.loads(lpctl(lpd, "--json", "kill-all", cwd=here).stdout)
        assert result["killed"] == [] and [k["pid"] for k in result["kept"]] == [held["pid"]]
        assert result["kept"][0]["holders"] == 1 and result["kept"][0]["kept"] is True

        # --force stops it under its holder.
        result = json.loads(lpctl(lpd, "--json", "kill-all", "--force", cwd=here).stdout)
        assert [k["pid"] for k in result["killed"]] == [held["pid"]] and result["kept"] == []
        assert wait_gone(held["pid"]) and alive(elsewhere["pid"])
    finally:
        holder.kill()
        holder.wait(timeout=60)
        holder.stdout.close()
        holder.stderr.close()

    # --all-projects: every project's (and --scope names one).
    assert "nothing to kill" in lpctl(lpd, "kill-all", "--scope", here, cwd=work_dir).stdout
    out = lpctl(lpd, "kill-all", "--all-projects", cwd=work_dir).stdout
    assert f"killed {elsewhere['full_name']} (pid {elsewhere['pid']})" in out and wait_gone(elsewhere["pid"])


def test_kill_all_from_one_holder_among_several_only_lets_go(lpd, work_dir):
    here = project(work_dir, "p")
    fields = dict(name="shared", scope=here, pattern="^ready", argv=["sh", "-c", "echo ready; exec sleep 600"],
                  cwd=here, env={"PATH": "/usr/bin:/bin"}, lease=True)
    first, second = RawClient(lpd.socket), RawClient(lpd.socket)
    try:
        first.hello()
        second.hello()
        started = first.request("proc.ensure", **fields)
        assert started["ok"], started
        assert second.request("proc.ensure", **fields)["result"]["holders"] == 2
        reply = first.request("proc.kill_all", scope=here)
        assert reply["ok"], reply
        result = reply["result"]
        assert result["killed"] == [] and result["kept"] == []
        assert [(r["name"], r["released"], r["holders"]) for r in result["released"]] == [("shared", True, 1)]
        assert alive(started["result"]["pid"])
        # The last holder's kill-all stops it.
        reply = second.request("proc.kill_all", scope=here)
        assert [k["pid"] for k in reply["result"]["killed"]] == [started["result"]["pid"]]
        assert wait_gone(started["result"]["pid"])
    finally:
        first.close()
        second.close()


def test_a_later_page_that_fails_leaves_the_json_list_unclosed_and_says_so():
    """The attack on issue 13: when a later page failed, `lpctl --json runs
    -a` left the first page's items on stdout, a line without its end, and
    said nothing of the list being cut. The array still stays unclosed (no
    reader can take a part for the whole), the line is ended, and stderr
    says where the list stops, before the error. A fake lpd answers the
    first page with a cursor, the second with an error."""
    directory, path, listener = fake_lpd_listener("lpd.sock", 1)
    asked = []

    def reply_for(msg):
        if msg["op"] == "hello":
            return {"id": msg["id"], "ok": True, "result": {"protocol": 1}}
        if "after" not in msg:
            return {"id": msg["id"], "ok": True,
                    "result": {"runs": [{"run_id": "r1", "status": "ended"}], "next": {"run_id": "r1"}}}
        return {"id": msg["id"], "ok": False, "error": {"code": "unavailable", "message": "the disk is on fire"}}

    def serve():
        conn, _ = listener.accept()
        answer_as_lpd(conn, None, asked.append, reply_for=reply_for)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        r = subprocess.run([LPCTL_BIN, "--socket", path, "--json", "runs", "-a"], capture_output=True, text=True,
                           timeout=60)
    finally:
        server.join(timeout=60)
        listener.close()
        shutil.rmtree(directory, ignore_errors=True)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == '[{"run_id":"r1","status":"ended"}\n'
    assert "lpctl: the list above stops after 1 item(s): its next page could not be read\n" in r.stderr
    assert "the disk is on fire" in r.stderr
    assert [m["op"] for m in asked] == ["hello", "run.list", "run.list"]
