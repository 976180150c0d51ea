"""Issue 15 (h15abort): pytest-abort-postprocess and `lpctl report RUN` patch
the crashed tests into pytest-json-report, pytest-html and pytest-csv
reports. Those plugins are not Debian packages: the reports here are built
in their documented formats. Checked: the formats are kept (JSON keys and
summary counts, the HTML's data-jsonblob still parses, CSV columns), the
crashed test is failed, patching twice = once, missing files are created,
and hostile paths (a link, a FIFO, a huge file) are refused without harm."""

import html
import json
import os
import re
import signal
import stat
import subprocess

from lpd_harness import LPCTL_BIN, PYTHON, EventWaiter, finish, start_pytest, write_tests

BUILD_DIR = os.environ.get("LPD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build", "default"))
POSTPROCESS = os.path.join(BUILD_DIR, "pytest-abort-postprocess")
NO_SANITIZER_SIGNALS = "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0"
CRASHED = "tests/test_mod.py::test_b_crash"

JSON_KEYS = ["created", "duration", "exitcode", "root", "environment", "summary", "collectors", "tests", "warnings"]


def json_report(path):
    """What pytest-json-report writes for a session that ran test_a_ok only."""
    report = {"created": 1768435199.1, "duration": 0.12, "exitcode": 0, "root": "/src/project",
              "environment": {"Python": "3.11.2", "Platform": "Linux"},
              "summary": {"passed": 1, "total": 1, "collected": 1},
              "collectors": [{"nodeid": "", "outcome": "passed", "result": [{"nodeid": "tests", "type": "Dir"}]}],
              "tests": [{"nodeid": "tests/test_mod.py::test_a_ok", "lineno": 2, "keywords": ["test_a_ok"],
                         "outcome": "passed", "setup": {"duration": 0.0001, "outcome": "passed"},
                         "call": {"duration": 0.0002, "outcome": "passed"},
                         "teardown": {"duration": 0.0001, "outcome": "passed"}}],
              "warnings": []}
    with open(path, "w") as f:
        json.dump(report, f)


def html_report(path):
    """A pytest-html 4 report's parts lpd touches: the summary counts and
    the data-container's data-jsonblob (HTML-escaped JSON)."""
    blob = {"environment": {"Python": "3.11.2"},
            "tests": {"tests/test_mod.py::test_a_ok": [{
                "extras": [], "result": "Passed", "testId": "tests/test_mod.py::test_a_ok",
                "resultsTableRow": ["<td class=\"col-result\">Passed</td>",
                                    "<td class=\"col-testId\">tests/test_mod.py::test_a_ok</td>",
                                    "<td class=\"col-duration\">1 ms</td>", "<td class=\"col-links\"></td>"],
                "log": "No log output captured."}]},
            "renderCollapsed": ["passed"], "initialSort": "result", "title": "report.html"}
    page = ("<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"/><title id=\"head-title\">report.html</title>"
            "</head>\n<body>\n<h1 id=\"title\">report.html</h1>\n<div id=\"data-container\" data-jsonblob=\""
            + html.escape(json.dumps(blob), quote=True) + "\"></div>\n<div class=\"summary\">\n"
            "<p class=\"run-count\">1 test took 00:00:01.</p>\n"
            "<input checked=\"true\" class=\"filter\" name=\"filter_checkbox\" type=\"checkbox\" "
            "data-test-result=\"failed\" disabled/><span class=\"failed\">0 Failed,</span>\n"
            "<input checked=\"true\" class=\"filter\" name=\"filter_checkbox\" type=\"checkbox\" "
            "data-test-result=\"passed\" /><span class=\"passed\">1 Passed,</span>\n</div>\n"
            "<table id=\"results-table\"></table>\n<script>const x = document.getElementById('data-container')"
            ".dataset.jsonblob</script>\n</body>\n</html>\n")
    with open(path, "w") as f:
        f.write(page)


def csv_report(path):
    with open(path, "w", newline="") as f:
        f.write("id,module,name,file,doc,markers,status,message,duration\r\n"
                "tests/test_mod.py::test_a_ok,tests.test_mod,test_a_ok,tests/test_mod.py,,,passed,,0.0002\r\n")


def html_blob(path):
    with open(path) as f:
        page = f.read()
    values = re.findall(r'data-jsonblob="([^"]*)"', page)
    assert len(values) == 1, page
    return json.loads(html.unescape(values[0])), page


def read(path):
    with open(path, "rb") as f:
        return f.read()


def check_patched(paths, crashed=CRASHED, passed=("tests/test_mod.py::test_a_ok",)):
    """The three reports list `crashed` as failed, beside what they had."""
    with open(paths["json"]) as f:
        report = json.load(f)
    if passed:
        assert list(report) == JSON_KEYS, list(report)  # every key kept, in order
        assert report["summary"] == {"passed": 1, "total": 2, "collected": 2, "failed": 1}, report["summary"]
        assert report["environment"] == {"Python": "3.11.2", "Platform": "Linux"}
    assert report["exitcode"] == 1
    tests = {t["nodeid"]: t for t in report["tests"]}
    assert tests[crashed]["outcome"] == "failed" and tests[crashed]["call"]["outcome"] == "failed"
    assert "SIGSEGV" in tests[crashed]["call"]["longrepr"]
    for nodeid in passed:
        assert tests[nodeid]["outcome"] == "passed"

    blob, page = html_blob(paths["html"])
    assert blob["tests"][crashed][0]["result"] == "Failed", blob
    assert "SIGSEGV" in blob["tests"][crashed][0]["log"]
    for nodeid in passed:
        assert blob["tests"][nodeid][0]["result"] == "Passed"
    if passed:
        assert '<span class="failed">1 Failed,</span>' in page and "2 tests took 00:00:01." in page, page
        assert 'data-test-result="failed" disabled' not in page

    with open(paths["csv"], newline="") as f:
        import csv
        rows = list(csv.DictReader(f))
    by_id = {r["id"]: r for r in rows}
    assert by_id[crashed]["status"] == "failed" and "SIGSEGV" in by_id[crashed]["message"], rows
    assert by_id[crashed]["name"] == crashed.split("::")[-1]
    for nodeid in passed:
        assert by_id[nodeid]["status"] == "passed"


def report_paths(directory):
    return {kind: os.path.join(directory, f"tests-report.{kind}") for kind in ("json", "html", "csv")}


def make_reports(paths):
    json_report(paths["json"])
    html_report(paths["html"])
    csv_report(paths["csv"])


def crash_log_file(directory, *nodeids):
    path = os.path.join(directory, "crashed_tests.jsonl")
    with open(path, "w") as f:
        for nodeid in nodeids:
            f.write(json.dumps({"nodeid": nodeid, "reason": "killed by SIGSEGV", "crash_time": 1768435200.5,
                                "duration": 0.25, "signal_name": "SIGSEGV", "gpu_id": "0"}) + "\n")
    return path


def postprocess(cwd, *args, env_log=None, timeout=60):
    env = dict(os.environ)
    env.pop("PYTEST_ABORT_CRASHED_TESTS_LOG", None)
    if env_log:
        env["PYTEST_ABORT_CRASHED_TESTS_LOG"] = env_log
    return subprocess.run([POSTPROCESS, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


# -- pytest-abort-postprocess, as its documentation shows it -------------------

def test_postprocess_patches_the_three_reports_once(work_dir):
    paths = report_paths(work_dir)
    make_reports(paths)
    os.chmod(paths["csv"], 0o640)
    if os.geteuid() == 0:  # root patching a user's report leaves it theirs
        os.chown(paths["csv"], 65534, 65534)
    log = crash_log_file(work_dir, CRASHED, " " + CRASHED + " ", "tests/test_mod.py::test_a_ok")
    with open(log, "a") as f:
        f.write("\n{not json\n")
    # The environment form: export PYTEST_ABORT_CRASHED_TESTS_LOG=...; pytest-abort-postprocess --json-report ...
    result = postprocess(work_dir, "--json-report", paths["json"], "--html-report", paths["html"], "--csv-report",
                         paths["csv"], env_log=log)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("added 1 crashed test(s)") == 3, result.stdout
    check_patched(paths)  # test_a_ok was in the reports already: kept passed, not added again
    assert stat.S_IMODE(os.stat(paths["csv"]).st_mode) == 0o640  # the file's mode is kept
    if os.geteuid() == 0:
        assert (os.stat(paths["csv"]).st_uid, os.stat(paths["csv"]).st_gid) == (65534, 65534)
    first = {kind: read(path) for kind, path in paths.items()}
    # The explicit form, again: nothing changes.
    result = postprocess(work_dir, "--crash-log", log, "--json-report", paths["json"], "--html-report",
                         paths["html"], "--csv-report", paths["csv"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("unchanged") == 3, result.stdout
    assert {kind: read(path) for kind, path in paths.items()} == first
    assert not [n for n in os.listdir(work_dir) if ".lpctl-" in n]  # no temp file left


def test_postprocess_creates_missing_reports(work_dir):
    paths = report_paths(os.path.join(work_dir, "out"))
    os.mkdir(os.path.join(work_dir, "out"))
    log = crash_log_file(work_dir, CRASHED)
    result = postprocess(work_dir, "--crash-log", log, "--json-report", paths["json"], "--html-report",
                         paths["html"], "--csv-report", paths["csv"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("created") == 3, result.stdout
    check_patched(paths, passed=())
    with open(paths["csv"], newline="") as f:
        assert f.readline() == "id,module,name,file,doc,markers,status,message,duration\r\n"
    first = {kind: read(path) for kind, path in paths.items()}
    assert postprocess(work_dir, "--crash-log", log, "--json-report", paths["json"], "--html-report",
                       paths["html"], "--csv-report", paths["csv"]).returncode == 0
    assert {kind: read(path) for kind, path in paths.items()} == first


def test_postprocess_needs_a_crash_log(work_dir):
    result = postprocess(work_dir, "--json-report", os.path.join(work_dir, "r.json"))
    assert result.returncode == 2 and "PYTEST_ABORT_CRASHED_TESTS_LOG" in result.stderr, result.stderr
    assert not os.path.exists(os.path.join(work_dir, "r.json"))
    result = postprocess(work_dir, "--crash-log", os.path.join(work_dir, "absent.jsonl"), "--json-report",
                         os.path.join(work_dir, "r.json"))
    assert result.returncode == 1 and "absent.jsonl" in result.stderr, result.stderr


# -- hostile paths ----------------------------------------------------------------

def test_links_fifos_huge_and_foreign_files_are_refused_and_the_rest_is_patched(work_dir):
    log = crash_log_file(work_dir, CRASHED)
    precious = os.path.join(work_dir, "precious.json")
    json_report(precious)
    before = read(precious)
    link = os.path.join(work_dir, "link.json")
    os.symlink(precious, link)
    fifo = os.path.join(work_dir, "report.html")
    os.mkfifo(fifo)
    huge = os.path.join(work_dir, "huge.csv")
    with open(huge, "wb") as f:  # sparse: 300 MiB, over the limit, refused before any read
        f.truncate(300 << 20)
    # A FIFO nobody writes would hang a blocking open; the timeout catches that.
    result = postprocess(work_dir, "--crash-log", log, "--json-report", link, "--html-report", fifo,
                         "--csv-report", huge, timeout=30)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "symbolic link" in result.stderr and "not a regular file" in result.stderr, result.stderr
    assert "limit" in result.stderr, result.stderr
    assert read(precious) == before and os.path.islink(link)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert os.path.getsize(huge) == 300 << 20

    # A file that is not its tool's format is left alone; the others are still done.
    paths = report_paths(work_dir)
    make_reports(paths)
    with open(paths["json"], "w") as f:
        f.write('{"tests": [')  # torn: pytest-json-report died mid-write
    result = postprocess(work_dir, "--crash-log", log, "--json-report", paths["json"], "--html-report",
                         paths["html"], "--csv-report", paths["csv"])
    assert result.returncode == 1 and "not a JSON object" in result.stderr, result.stderr
    assert read(paths["json"]) == b'{"tests": ['
    assert html_blob(paths["html"])[0]["tests"][CRASHED][0]["result"] == "Failed"

    # A FIFO as the crash log: refused, not waited on.
    fifo_log = os.path.join(work_dir, "crashes.fifo")
    os.mkfifo(fifo_log)
    result = postprocess(work_dir, "--crash-log", fifo_log, "--json-report", paths["csv"], timeout=30)
    assert result.returncode == 1 and "not a regular file" in result.stderr, result.stderr


# -- lpctl report RUN: lpd's own records of a real run --------------------------

SUITE = """
import ctypes
def test_a_ok():
    pass
def test_b_crash():
    ctypes.string_at(0)
"""


def test_lpctl_report_patches_the_reports_of_a_run(lpd, work_dir):
    os.mkdir(os.path.join(work_dir, "tests"))
    write_tests(os.path.join(work_dir, "tests"), "test_mod.py", SUITE)
    env = lpd.env()
    env.pop("LPD_RUN_ID", None)
    env.pop("PYTEST_ABORT_CRASHED_TESTS_LOG", None)
    env["ASAN_OPTIONS"] = NO_SANITIZER_SIGNALS
    result = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--", PYTHON, "-m", "pytest", "-p",
                             "no:cacheprovider", "-q", "tests"], cwd=work_dir, capture_output=True, text=True,
                            timeout=240, env=env)
    assert result.returncode == -signal.SIGSEGV, (result.stdout, result.stderr)
    run_id = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])["run_id"]
    paths = report_paths(work_dir)
    make_reports(paths)  # as pytest-json-report / pytest-html / pytest-csv would have, had pytest not died
    junit = os.path.join(work_dir, "junit.xml")
    args = ["report", run_id, "--junit", junit, "--json-report", paths["json"], "--html-report", paths["html"],
            "--csv-report", paths["csv"]]
    out = lpd.lpctl(*args).stdout
    assert out.count("added 1 crashed test(s)") == 3 and f"wrote {junit}" in out, out
    check_patched(paths)
    blob = html_blob(paths["html"])[0]
    assert "SIGSEGV" in blob["tests"][CRASHED][0]["log"]
    with open(paths["json"]) as f:
        crashed = [t for t in json.load(f)["tests"] if t["nodeid"] == CRASHED][0]
    assert crashed["metadata"]["lpd_crash"]["run_id"] == run_id
    first = {kind: read(path) for kind, path in paths.items()}
    assert lpd.lpctl(*args).stdout.count("unchanged") == 3
    assert {kind: read(path) for kind, path in paths.items()} == first
    # Missing reports are made from the run's records too.
    for path in paths.values():
        os.unlink(path)
    assert lpd.lpctl(*args[:2], *args[4:]).stdout.count("created") == 3
    check_patched(paths, passed=())
    # A run lpd does not know is an error, not an empty report.
    absent = os.path.join(work_dir, "absent.json")
    result = lpd.lpctl("report", "no-such-run", "--json-report", absent, check=False)
    assert result.returncode == 1 and "no run" in result.stderr, result.stderr
    assert not os.path.exists(absent)
    # Nothing to write, or no run: a usage error before anything is done.
    assert lpd.lpctl("report", run_id, check=False).returncode == 64
    assert lpd.lpctl("report", "--json-report", paths["json"], check=False).returncode == 64


def test_lpctl_report_of_a_plain_pytest_run(lpd, work_dir):
    """A run no `lpctl run` started (pytest with the plugin and a daemon) has
    its crash records too; a run without crashes leaves reports as they are."""
    os.mkdir(os.path.join(work_dir, "tests"))
    write_tests(os.path.join(work_dir, "tests"), "test_mod.py", SUITE)
    proc = start_pytest(lpd, work_dir, "tests", env_extra={"ASAN_OPTIONS": NO_SANITIZER_SIGNALS})
    code, out = finish(proc)
    assert code == -signal.SIGSEGV, out
    run_id = re.search(r"lpd: run_id (\S+)", out).group(1)
    paths = report_paths(work_dir)
    make_reports(paths)
    args = ["report", run_id, "--json-report", paths["json"], "--html-report", paths["html"], "--csv-report",
            paths["csv"]]
    # lpd records the death once the process is gone: wait for that event.
    waiter = EventWaiter(lpd, types=["crash"], run_id=run_id)
    try:
        if not lpd.lpctl_json("crashes", "--run-id", run_id):
            waiter.wait("crash")
    finally:
        waiter.close()
    assert lpd.lpctl(*args).stdout.count("added 1 crashed test(s)") == 3
    check_patched(paths)

    write_tests(os.path.join(work_dir, "tests"), "test_mod.py", "def test_a_ok():\n    pass\n")
    code, out = finish(start_pytest(lpd, work_dir, "tests"))
    assert code == 0, out
    clean_run = re.search(r"lpd: run_id (\S+)", out).group(1)
    before = {kind: read(path) for kind, path in paths.items()}
    assert lpd.lpctl("report", clean_run, *args[2:]).stdout.count("unchanged") == 3
    assert {kind: read(path) for kind, path in paths.items()} == before
