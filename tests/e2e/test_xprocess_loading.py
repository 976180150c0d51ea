"""Issue 14: where lpd's `xprocess` and `lpd_process` fixtures come from.
lpd's plugin gives both wherever it loads (PYTEST_PLUGINS=lpd_pytest, its
entry point, `lpctl run`), `xprocess` and --xkill/--xshow only while
pytest-xprocess's own plugin is not active (-p no:xprocess, or not
loaded at all); with pytest-xprocess active, `xprocess` is its own. Both
use the plugin's socket (--lpd-socket), and no PytestAssertRewriteWarning
stops a project with `filterwarnings = error`."""

import os
import shutil
import subprocess
import textwrap

from lpd_harness import LPCTL_BIN, SOURCE_DIR

PYTHON = "/usr/bin/python3"
HELPER = os.path.join(os.path.dirname(__file__), "helpers", "helper_server.py")
SHIM = os.path.join(SOURCE_DIR, "shim", "python")

LPD_FIXTURES_TEST = textwrap.dedent(f"""
    import sys
    import warnings

    from lpd_pytest.xprocess import ProcessStarter

    class Starter(ProcessStarter):
        pattern = "ready to accept"
        args = [sys.executable, {HELPER!r}]
        timeout = 60

    def test_lpd_fixtures(xprocess, lpd_process, request):
        assert xprocess is lpd_process
        assert type(xprocess).__module__ == "lpd_pytest.xprocess"
        assert not request.config.pluginmanager.has_plugin("xprocess")
        pid, log = xprocess.ensure("loaded", Starter)
        assert request.config.getoption("xkill") is False
        assert xprocess.getinfo("loaded").terminate() == 1
""")


def make_project(tmp_path, source=LPD_FIXTURES_TEST):
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
    (project / "test_fixtures.py").write_text(source)
    return project


def base_env(lpd, **extra):
    env = lpd.env(PYTHONPATH=SHIM)
    for key in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        env.pop(key, None)
    env.update(extra)
    return env


def run(project, env, *args, command=None):
    command = command or [PYTHON, "-m", "pytest"]
    r = subprocess.run([*command, "-p", "no:cacheprovider", "-q", *args], cwd=project, env=env,
                       capture_output=True, text=True, timeout=300)
    return r, r.stdout + r.stderr


def killed(lpd, name):
    return [p for p in lpd.lpctl_json("ps", "-a")["processes"] if p["name"] == name and p["state"] == "killed"]


def test_pytest_plugins_with_xprocess_disabled(lpd, tmp_path):
    project = make_project(tmp_path)
    r, out = run(project, base_env(lpd, PYTEST_PLUGINS="lpd_pytest"), "-p", "no:xprocess")
    assert r.returncode == 0 and "1 passed" in out, out
    assert killed(lpd, "loaded")


def test_without_pytest_xprocess_loaded(lpd, tmp_path):
    # Plugin autoload off: pytest-xprocess's entry point never loads, as
    # when it is not installed; lpd's plugin comes by PYTEST_PLUGINS.
    project = make_project(tmp_path)
    r, out = run(project, base_env(lpd, PYTEST_PLUGINS="lpd_pytest", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert r.returncode == 0 and "1 passed" in out, out


def test_entry_point(lpd, tmp_path):
    # lpd_pytest "installed": the package and a dist-info with the entry
    # point of shim/python/packaging/entry_points.txt, nothing else.
    site = tmp_path / "site"
    site.mkdir()
    os.symlink(os.path.join(SHIM, "lpd_pytest"), site / "lpd_pytest")
    dist = site / "lpd_pytest-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lpd-pytest\nVersion: 0\n")
    shutil.copy(os.path.join(SHIM, "packaging", "entry_points.txt"), dist / "entry_points.txt")
    project = make_project(tmp_path)
    r, out = run(project, base_env(lpd, PYTHONPATH=str(site)), "-p", "no:xprocess")
    assert r.returncode == 0 and "1 passed" in out, out


def test_lpctl_run(lpd, tmp_path):
    project = make_project(tmp_path)
    r, out = run(project, base_env(lpd), "-p", "no:xprocess",
                 command=[LPCTL_BIN, "--socket", lpd.socket, "run", "--", PYTHON, "-m", "pytest"])
    assert r.returncode == 0 and "1 passed" in out, out


def test_lpd_socket_option(lpd, tmp_path):
    project = make_project(tmp_path)
    env = base_env(lpd, PYTEST_PLUGINS="lpd_pytest", LPD_SOCKET=str(tmp_path / "no-lpd-here.sock"))
    r, out = run(project, env, "-p", "no:xprocess", f"--lpd-socket={lpd.socket}")
    assert r.returncode == 0 and "1 passed" in out, out
    assert killed(lpd, "loaded")


def test_pytest_xprocess_active_keeps_its_fixture(lpd, tmp_path):
    project = make_project(tmp_path, textwrap.dedent("""
        import xprocess as upstream

        def test_fixtures(xprocess, lpd_process, request):
            assert isinstance(xprocess, upstream.XProcess)
            assert type(lpd_process).__module__ == "lpd_pytest.xprocess"
            assert not request.config.pluginmanager.has_plugin("lpd_xprocess")
    """))
    # -p no:cacheprovider would break pytest-xprocess's own fixture (it uses the cache).
    r = subprocess.run([PYTHON, "-m", "pytest", "-q", "-o", f"cache_dir={tmp_path / 'cache'}"], cwd=project,
                       env=base_env(lpd, PYTEST_PLUGINS="lpd_pytest"), capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "1 passed" in out, out


def test_process_fixture_module_raises_no_rewrite_warning(lpd, tmp_path):
    # The old way in, next to the plugin: under filterwarnings = error a
    # PytestAssertRewriteWarning would stop the run.
    project = make_project(tmp_path)
    r, out = run(project, base_env(lpd, PYTEST_PLUGINS="lpd_pytest"), "-p", "no:xprocess",
                 "-p", "lpd_pytest.process_fixture")
    assert r.returncode == 0 and "1 passed" in out, out
    assert "Warning" not in out, out


def test_xshow_and_xkill(lpd, tmp_path):
    project = make_project(tmp_path, textwrap.dedent(f"""
        import sys
        from lpd_pytest.xprocess import ProcessStarter

        class Starter(ProcessStarter):
            pattern = "ready to accept"
            args = [sys.executable, {HELPER!r}]
            timeout = 60

        def test_leaves_it_running(xprocess):
            xprocess.ensure("left-running", Starter)
    """))
    env = base_env(lpd, PYTEST_PLUGINS="lpd_pytest")
    r, out = run(project, env, "-p", "no:xprocess")
    assert r.returncode == 0 and "1 passed" in out, out
    r, out = run(project, env, "-p", "no:xprocess", "--xshow")
    assert r.returncode == 0 and " left-running LIVE " in out, out
    r, out = run(project, env, "-p", "no:xprocess", "--xkill")
    assert r.returncode == 0 and " left-running TERMINATED" in out, out
    r, out = run(project, env, "-p", "no:xprocess", "--xshow")
    assert r.returncode == 0 and " left-running DEAD " in out and "LIVE" not in out, out
