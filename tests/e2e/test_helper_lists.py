"""h14fixB (issue 14, attack findings 2 and 13): lists of helpers stay
under the protocol's 1 MiB line limit however long their argv and however
many there are, and `lpctl kill NAME` says which helper (its full name) it
killed, and when the name reached another project.

- proc.list answers a page at a time (`limit`, `after` = the previous
  reply's `next`); `lpctl ps` joins the pages; each record in a list has
  its argv cut to 1 KiB (`argv_truncated`, `argv_count`); proc.info keeps
  the whole argv.
- proc.kill_all's reply is bounded and counts every helper it killed.

Every wait is an event (a reply, a pidfd); never a sleep."""

import json
import subprocess

from lpd_harness import LPCTL_BIN, wait_all_gone

BIG = "a" * 120_000  # ten of these: 1.2 MB of argv, more than one protocol line
COUNT = 10


def start_big_helpers(lpd, scope):
    pids = {}
    for i in range(COUNT):
        started = lpd.lpctl_json("ensure", "--scope", scope, f"big{i}", "--", "bash", "-c", "exec sleep 300", BIG)
        pids[f"big{i}"] = started["pid"]
    return pids


def test_ps_and_kill_all_of_helpers_with_huge_argv(lpd, tmp_path):
    scope = str(tmp_path)
    pids = start_big_helpers(lpd, scope)
    try:
        listed = lpd.lpctl_json("ps")["processes"]
        mine = {p["name"]: p for p in listed if p.get("scope") == scope}
        assert set(mine) == set(pids), listed
        for name, record in mine.items():
            assert record["pid"] == pids[name]
            assert record["argv_truncated"] is True and record["argv_count"] == 4, record
            assert sum(len(a) for a in record["argv"]) == 1024, record["argv"]
            assert record["argv"][:3] == ["bash", "-c", "exec sleep 300"]
        table = lpd.lpctl("ps", "-a").stdout
        assert all(name in table for name in pids), table

        # One helper's info keeps the whole argv.
        c = lpd.client()
        try:
            info = c.request("proc.info", name="big0", scope=scope)
            assert info["ok"], info
            assert info["result"]["argv"][3] == BIG and "argv_truncated" not in info["result"]
            # Pages: `limit` records each, the cursor goes on until "next" is null.
            seen, after, pages = [], None, 0
            while True:
                fields = {"all": True, "limit": 3, "scope": scope}
                if after is not None:
                    fields["after"] = after
                reply = c.request("proc.list", **fields)
                assert reply["ok"], reply
                page = reply["result"]["processes"]
                assert len(page) <= 3
                seen += [p["name"] for p in page]
                pages += 1
                after = reply["result"]["next"]
                if after is None:
                    break
            assert sorted(seen) == sorted(pids) and pages >= 4, (seen, pages)
            bad = c.request("proc.list", after={"generation": "x"})
            assert not bad["ok"] and bad["error"]["code"] == "bad_request", bad
        finally:
            c.close()

        # kill-all answers (bounded), says what it did, and exits 0.
        out = lpd.lpctl("kill-all", "--scope", scope)
        assert out.returncode == 0
        assert all(f"killed {scope}::{name} (pid {pid})" in out.stdout for name, pid in pids.items()), out.stdout
        assert wait_all_gone(list(pids.values())) == []
        pids = {}
    finally:
        if pids:
            lpd.lpctl("kill-all", "--scope", scope, check=False)


def test_kill_all_json_reply_counts_every_kill(lpd, tmp_path):
    scope = str(tmp_path)
    pids = start_big_helpers(lpd, scope)
    result = lpd.lpctl_json("kill-all", "--scope", scope)
    assert result["killed_count"] == COUNT and len(result["killed"]) == COUNT, result.keys()
    assert result["kept_count"] == 0 and result["released_count"] == 0 and result["omitted"] == 0
    assert all(k["argv_truncated"] for k in result["killed"])
    assert wait_all_gone(list(pids.values())) == []


def lpctl_in(lpd, cwd, *args, check=True):
    r = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, *args], cwd=cwd, env=lpd.env(), capture_output=True,
                       text=True, timeout=120)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_kill_by_name_from_another_project_says_whose_it_killed(lpd, tmp_path):
    project_a, project_b = tmp_path / "projA", tmp_path / "projB"
    for project in (project_a, project_b):
        project.mkdir()
        (project / "pytest.ini").write_text("[pytest]\n")
    started = json.loads(lpctl_in(lpd, project_a, "--json", "ensure", "xdb", "--", "sleep", "300").stdout)
    assert started["full_name"] == f"{project_a}::xdb"
    killed = lpctl_in(lpd, project_b, "kill", "xdb")
    assert f"xdb is not in this project ({project_b}); it named your helper {project_a}::xdb" in killed.stdout, \
        killed.stdout
    assert f"killed {project_a}::xdb (pid {started['pid']})" in killed.stdout, killed.stdout
    assert wait_all_gone([started["pid"]]) == []

    # In its own project: the full name, no note.
    again = json.loads(lpctl_in(lpd, project_a, "--json", "ensure", "xdb", "--", "sleep", "300").stdout)
    killed = lpctl_in(lpd, project_a, "kill", "xdb")
    assert "not in this project" not in killed.stdout
    assert f"killed {project_a}::xdb (pid {again['pid']})" in killed.stdout, killed.stdout
    assert wait_all_gone([again["pid"]]) == []
