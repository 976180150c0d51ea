"""issue 16: the HTTP job API's jobs outlive an lpd restart (kill -9 included).

A relay-run client that created a job keeps asking for it by id: after lpd
comes back, GET /jobs/ID answers with the job as it now is (ended while lpd
was away, still running, or its run gone), a running job's id cannot start
a second pytest, and stop still ends it. Every wait is an event (an HTTP
reply, a WebSocket frame, a process's pidfd); WAIT only bounds a failure."""

import asyncio
import json
import os
import select
import shutil

import pytest

pytest.importorskip("websockets")

from lpd_harness import short_tempdir, write_tests  # noqa: E402

from http_harness import QUICK_SUITE, SLOW_SUITE, WAIT, Api, call, http_lpd, job_frame, next_frame  # noqa: E402,F401

# Runs until the test opens its FIFO's other end: the test decides when the
# job ends (while lpd is away).
GATED_SUITE = """
def test_gated():
    with open({fifo!r}) as gate:
        assert gate.read() == "go\\n"
"""


@pytest.fixture
def suite_dir():
    path = short_tempdir()
    write_tests(path, "test_quick.py", QUICK_SUITE)
    write_tests(path, "test_slow.py", SLOW_SUITE)
    for name in ("brief", "lost"):
        fifo = os.path.join(path, name + ".fifo")
        os.mkfifo(fifo)
        write_tests(path, f"test_{name}.py", GATED_SUITE.format(fifo=fifo))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_dir_of(lpd, job_id):
    """runs/<run id> of the job's run (its run id starts with the job id)."""
    runs = os.path.join(lpd.state_dir, "runs")
    found = [d for d in os.listdir(runs) if d.startswith(job_id + "-")]
    assert len(found) == 1, found
    return os.path.join(runs, found[0])


def wait_for_exit(pid):
    """Blocks until process `pid` (not our child) has ended: its pidfd becomes readable."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        assert poller.poll(WAIT * 1000), f"process {pid} did not end"
    finally:
        os.close(fd)


def release(fifo):
    with open(fifo, "w") as gate:
        gate.write("go\n")


def test_jobs_keep_their_ids_states_and_output_across_a_kill_9(http_lpd, suite_dir):
    api = Api(http_lpd)

    async def before():
        async with api.ws() as ws:
            status, _, job = await call(api.request, "POST", "/jobs",
                                        {"args": ["-q", "test_quick.py"], "id": "quick", "cwd": suite_dir})
            assert status == 201, job
            await next_frame(ws, job_frame("quick", "done"))
            for job_id in ("slow", "brief", "lost"):
                status, _, job = await call(api.request, "POST", "/jobs",
                                            {"args": ["-q", f"test_{job_id}.py"], "id": job_id, "cwd": suite_dir})
                assert status == 201 and job["state"] == "in-progress", job
            # Each test runs (its shim said test.start) before lpd goes.
            started = set()
            while started != {"slow", "brief", "lost"}:
                frame = await next_frame(ws, lambda f: f["type"] == "test" and f["payload"].get("event") == "test.start")
                started.add(frame["payload"]["nodeid"].split("::")[0][len("test_"):-len(".py")])

    asyncio.run(before())
    monitors = {}
    for job_id in ("brief", "lost"):
        with open(os.path.join(run_dir_of(http_lpd, job_id), "job.json")) as f:
            monitors[job_id] = json.load(f)["monitor_pid"]
    lost_run = run_dir_of(http_lpd, "lost")

    http_lpd.kill9()
    # While lpd is away, two jobs end; one run's directory goes (as retention
    # or a person would remove it).
    for job_id in ("brief", "lost"):
        release(os.path.join(suite_dir, job_id + ".fifo"))
        wait_for_exit(monitors[job_id])
    shutil.rmtree(lost_run)
    http_lpd.start("--http", "127.0.0.1:0",
                   env=http_lpd.env(PATH="/usr/bin:/bin:" + os.environ.get("PATH", "")))
    api = Api(http_lpd)  # a new port; the token file is kept

    status, _, jobs = api.request("GET", "/jobs")
    assert status == 200
    assert [j["id"] for j in jobs] == ["quick", "slow", "brief", "lost"]
    status, _, quick = api.request("GET", "/jobs/quick")
    assert status == 200 and quick["state"] == "done" and quick["returncode"] == 1, quick
    assert "1 failed, 1 passed" in quick["text"] and "hello from test_fail" in quick["text"]
    status, _, brief = api.request("GET", "/jobs/brief")
    assert status == 200 and brief["state"] == "done" and brief["returncode"] == 0, brief  # ended while lpd was away
    assert "1 passed" in brief["text"]
    status, _, lost = api.request("GET", "/jobs/lost")
    assert status == 200 and lost["state"] == "done" and lost["returncode"] is None, lost
    assert "no longer knows this job's run" in lost["text"]
    status, _, slow = api.request("GET", "/jobs/slow")
    assert status == 200 and slow["state"] == "in-progress" and slow["returncode"] is None, slow

    # The running job's id is still taken: no second pytest under it.
    status, _, body = api.request("POST", "/jobs", {"args": ["test_slow.py"], "id": "slow", "cwd": suite_dir})
    assert status == 409, body
    assert len([d for d in os.listdir(os.path.join(http_lpd.state_dir, "runs")) if d.startswith("slow-")]) == 1

    async def stop_slow():
        async with api.ws() as ws:
            status, _, job = await call(api.request, "POST", "/jobs/slow/actions", {"action": "stop"})
            assert status == 200 and job["state"] == "terminating", job
            return await next_frame(ws, job_frame("slow", "done"))

    done = asyncio.run(stop_slow())["payload"]
    assert done["returncode"] not in (None, 0)
    assert "KeyboardInterrupt" in done["text"] or "Interrupted" in done["text"]

    # A deleted job stays deleted across the next restart; the others stay.
    assert api.request("DELETE", "/jobs/quick")[0] == 204
    http_lpd.stop()
    http_lpd.start("--http", "127.0.0.1:0",
                   env=http_lpd.env(PATH="/usr/bin:/bin:" + os.environ.get("PATH", "")))
    api = Api(http_lpd)
    status, _, jobs = api.request("GET", "/jobs")
    assert status == 200 and [(j["id"], j["state"]) for j in jobs] == [
        ("slow", "done"), ("brief", "done"), ("lost", "done")]
    assert api.request("GET", "/jobs/quick")[0] == 404


def test_a_damaged_job_table_is_left_out_and_lpd_serves(http_lpd, suite_dir):
    api = Api(http_lpd)
    status, _, job = api.request("POST", "/jobs", {"args": ["-q", "test_quick.py"], "id": "kept", "cwd": suite_dir})
    assert status == 201, job
    http_lpd.stop()
    table = os.path.join(http_lpd.state_dir, "http", "jobs", f"{os.geteuid()}.json")  # this user's table
    with open(table) as f:
        jobs = json.load(f)
    jobs["jobs"].append({"id": "../../etc", "owner": 0})  # not a record lpd writes
    with open(table, "w") as f:
        json.dump(jobs, f)
    http_lpd.start("--http", "127.0.0.1:0",
                   env=http_lpd.env(PATH="/usr/bin:/bin:" + os.environ.get("PATH", "")))
    api = Api(http_lpd)
    status, _, jobs = api.request("GET", "/jobs")
    assert status == 200 and [j["id"] for j in jobs] == ["kept"]
    assert "1 job record(s)" in http_lpd.log_text() and "were not restored" in http_lpd.log_text()

    # A table cut short is not one lpd wrote: set aside, said in the log, lpd serves.
    http_lpd.stop()
    with open(table, "r+") as f:
        f.truncate(40)
    http_lpd.start("--http", "127.0.0.1:0",
                   env=http_lpd.env(PATH="/usr/bin:/bin:" + os.environ.get("PATH", "")))
    api = Api(http_lpd)
    assert api.request("GET", "/jobs")[2] == []
    assert os.path.exists(table + ".damaged")
    assert f"the job table of uid {os.geteuid()}" in http_lpd.log_text()
    assert "is not one lpd wrote; its jobs are not restored (moved to" in http_lpd.log_text()

    # A link planted in its place is not followed: lpd starts with no jobs.
    http_lpd.stop()
    os.symlink("/etc/passwd", table)
    http_lpd.start("--http", "127.0.0.1:0",
                   env=http_lpd.env(PATH="/usr/bin:/bin:" + os.environ.get("PATH", "")))
    api = Api(http_lpd)
    assert api.request("GET", "/jobs")[2] == []
    assert http_lpd.ping()


def test_a_job_whose_run_was_pruned_says_its_output_is_gone(http_lpd, suite_dir):
    api = Api(http_lpd)

    async def two_jobs():
        async with api.ws() as ws:
            for job_id in ("first", "second"):
                status, _, job = await call(api.request, "POST", "/jobs",
                                            {"args": ["-q", "test_quick.py"], "id": job_id, "cwd": suite_dir})
                assert status == 201, job
                await next_frame(ws, job_frame(job_id, "done"))

    asyncio.run(two_jobs())
    http_lpd.lpctl("prune", "--keep-runs", "1")  # the older run goes
    status, _, first = api.request("GET", "/jobs/first")
    assert status == 200 and first["state"] == "done" and first["returncode"] == 1, first
    assert "this job's output is gone" in first["text"] and "removed" in first["text"], first
    status, _, second = api.request("GET", "/jobs/second")
    assert status == 200 and "1 failed, 1 passed" in second["text"], second
