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

from lpd_harness import LPCTL_BIN, SOURCE_DIR

PYTHON = "/usr/bin/python3"

SERVER = textwrap.dedent("""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    print(f"ready port={s.getsockname()[1]}", flush=True)
    while True:
        c, _ = s.accept()
        data = c.recv(100).decode().strip()
        print(f"helper served {data}", flush=True)  # in the log before the answer
        c.sendall(b"ok\\n")
        c.close()
""")

TESTS = textwrap.dedent("""
    import os
    import re
    import socket
    import sys

    import pytest
    from xprocess import ProcessStarter

    HERE = os.path.dirname(os.path.abspath(__file__))

    class Starter(ProcessStarter):
        pattern = r"ready port=\\d+"
        args = [sys.executable, os.path.join(HERE, "server.py")]
        timeout = 60

    @pytest.fixture(scope="session")
    def port(xprocess):
        pid, log = xprocess.ensure("srv", Starter)
        yield int(re.search(r"ready port=(\\d+)", log.read()).group(1))
        xprocess.getinfo("srv").terminate()

    def talk(port, text):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(text.encode() + b"\\n")
            return s.recv(100)

    def test_passes(port):
        assert talk(port, "request-of-the-passing-test") == b"ok\\n"

    def test_fails(port):
        talk(port, "request-of-the-failing-test é")
        assert False, "the failing test"

    def test_passes_too(port):
        assert talk(port, "request-after") == b"ok\\n"
""")


def test_helper_log_lines_in_the_report_of_a_failing_test(lpd, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
    (project / "server.py").write_text(SERVER)
    (project / "test_reports.py").write_text(TESTS)
    junit = tmp_path / "lpd.xml"
    env = lpd.env(PYTHONPATH=os.path.join(SOURCE_DIR, "shim", "python"))
    env.pop("PYTEST_ADDOPTS", None)
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
    env = lpd.env(PYTHONPATH=os.path.join(SOURCE_DIR, "shim", "python"), PYTEST_PLUGINS="lpd_pytest")
    env.pop("PYTEST_ADDOPTS", None)

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
