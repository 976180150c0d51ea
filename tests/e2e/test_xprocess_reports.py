"""Issue 14: what a helper wrote while a test ran goes with that test's
report when it fails (a report section, and <system-out> of its testcase
in lpd's JUnit), and nothing of it with a test that passed or with lines
written during another test. And two projects with the same helper name
each get their own helper (pytest-xprocess keys them by the project's
rootdir), shown and killed per project by --xshow/--xkill."""

import os
import subprocess
import textwrap
import xml.etree.ElementTree as ET

from lpd_harness import LPCTL_BIN, source_shim_env, strict_project
from xprocess_port_server import SERVER, STARTER

PYTHON = "/usr/bin/python3"

TESTS = STARTER + textwrap.dedent("""
    @pytest.fixture(scope="session")
    def port(xprocess):
        pid, log = xprocess.ensure("srv", Starter)
        yield int(re.search(r"ready port=(\\d+)", log.read()).group(1))
        xprocess.getinfo("srv").terminate()

    def test_passes(port):
        assert talk(port, "request-of-the-passing-test") == "ok request-of-the-passing-test\\n"

    def test_fails(port):
        talk(port, "request-of-the-failing-test é")
        assert False, "the failing test"

    def test_passes_too(port):
        assert talk(port, "request-after") == "ok request-after\\n"
""")


def test_helper_log_lines_in_the_report_of_a_failing_test(lpd, tmp_path):
    project = strict_project(tmp_path / "project", {"server.py": SERVER, "test_reports.py": TESTS})
    junit = tmp_path / "lpd.xml"
    env = source_shim_env(lpd)
    r = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--junit", str(junit), "--", PYTHON, "-m",
                        "pytest", "-p", "no:xprocess", "-p", "no:cacheprovider", "-q", "test_reports.py"],
                       cwd=project, env=env, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "1 failed, 2 passed" in out, out
    # The terminal report: a section of the failing test.
    assert "lpd helper srv: " in out and "helper served request-of-the-failing-test é" in out, out
    assert "helper served request-of-the-passing-test" not in out, out
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"test_passes", "test_fails", "test_passes_too"}, cases
    system_out = cases["test_fails"].find("system-out")
    assert system_out is not None, ET.tostring(cases["test_fails"]).decode()
    assert "helper served request-of-the-failing-test é" in system_out.text, system_out.text
    assert "request-of-the-passing-test" not in system_out.text and "request-after" not in system_out.text
    assert "ready port=" not in system_out.text, "lines from before the test"
    assert cases["test_fails"].find("failure") is not None
    assert cases["test_passes"].find("system-out") is None and cases["test_passes_too"].find("system-out") is None


HOLDER = textwrap.dedent("""
    import os
    import sys
    from lpd_pytest.xprocess import ProcessStarter

    class Starter(ProcessStarter):
        pattern = "ready to accept"
        args = [sys.executable, {helper!r}, "--ready", "ready to accept " + os.path.basename(os.getcwd())]
        timeout = 60

    def test_db(xprocess):
        pid, log = xprocess.ensure("db", Starter)
        assert ("ready to accept " + os.path.basename(os.getcwd())) in log.read()
        print("PID", pid)
""")


def test_two_projects_with_the_same_helper_name(lpd, tmp_path):
    helper = os.path.join(os.path.dirname(__file__), "helpers", "helper_server.py")
    env = source_shim_env(lpd, PYTEST_PLUGINS="lpd_pytest")

    def pytest(project, *args):
        r = subprocess.run([PYTHON, "-m", "pytest", "-p", "no:xprocess", "-p", "no:cacheprovider", "-q", "-s", *args],
                           cwd=project, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    pids = {}
    for name in ("alpha", "beta"):
        project = tmp_path / name
        project.mkdir()
        (project / "pytest.ini").write_text("[pytest]\n")
        (project / "test_db.py").write_text(HOLDER.format(helper=helper))
        out = pytest(project)
        pids[name] = int(out.split("PID ")[1].split()[0])
    assert pids["alpha"] != pids["beta"], "the second project got the first one's helper"
    shown = pytest(tmp_path / "alpha", "--xshow")
    assert f"{pids['alpha']} db LIVE" in shown and str(pids["beta"]) not in shown, shown
    killed = pytest(tmp_path / "beta", "--xkill")
    assert f"{pids['beta']} db TERMINATED" in killed and str(pids["alpha"]) not in killed, killed
    shown = pytest(tmp_path / "alpha", "--xshow")
    assert f"{pids['alpha']} db LIVE" in shown, "beta's --xkill killed alpha's helper"
    assert f"{pids['beta']} db DEAD" in pytest(tmp_path / "beta", "--xshow")
    assert f"{pids['alpha']} db TERMINATED" in pytest(tmp_path / "alpha", "--xkill")
