"""Issue 13, the shim's share of a run's start: pytest must not rewrite the
asserts of lpd's plugin modules. lpd loads the plugin with
PYTEST_PLUGINS=lpd_pytest, which marks every module under that name for
rewriting, and where pytest cannot cache the rewritten code (a package
installed read-only for the CI user, PYTHONDONTWRITEBYTECODE) every pytest
process, each xdist worker, parsed and rewrote the shim's sources again:
about 60 ms of each process's start. Checked by what loaded each module,
not by timing it."""

import ast
import os
import subprocess

import pytest

from lpd_harness import LPCTL_BIN, PYTHON, EventWaiter, finish, start_pytest, write_tests
from test_abort_compat import compat_env

LOADERS = """
import os
import sys


def test_loaders():
    shim = {name: type(module.__spec__.loader).__name__
            for name, module in sys.modules.items()
            if name == "lpd_pytest" or name.startswith("lpd_pytest.")}
    with open("loaders-%s.txt" % os.environ.get("PYTEST_XDIST_WORKER", "main"), "w") as f:
        f.write(repr(sorted(shim.items())))
"""


@pytest.mark.parametrize("xdist", [False, True], ids=["one process", "xdist"])
def test_the_plugin_modules_load_without_assert_rewriting(lpd, work_dir, xdist):
    write_tests(work_dir, "test_loaders.py", LOADERS)
    command = [PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_loaders.py"]
    if xdist:
        command += ["-n", "2"]
    env = compat_env(lpd, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--", *command], cwd=work_dir,
                            capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, (result.stdout, result.stderr)
    written = sorted(name for name in os.listdir(work_dir) if name.startswith("loaders-"))
    assert len(written) == 1, (written, result.stdout)  # one test, in the process or in one worker
    assert written[0] != "loaders-main.txt" if xdist else written[0] == "loaders-main.txt"
    for name in written:
        with open(os.path.join(work_dir, name)) as f:
            loaders = dict(ast.literal_eval(f.read()))
        # The package itself goes through pytest's hook (it was marked before
        # it loaded); every module under it must not.
        assert {"lpd_pytest.plugin", "lpd_pytest.reporter", "lpd_pytest.channel"} <= set(loaders), loaders
        rewritten = {name for name, loader in loaders.items()
                     if loader == "AssertionRewritingHook" and name != "lpd_pytest"}
        assert not rewritten, f"pytest rewrote the asserts of {sorted(rewritten)}"


def test_a_run_lpd_refuses_is_said_to_be_refused_not_away(lpd, tmp_path):
    """The attack on issue 13: pytest given the id of a run it may not join
    (another user's, or one that ended: LPD_RUN_ID) warned that results
    were "kept and sent when lpd is back", waited for lpd at the end and
    said "no lpd answering ... start one", with lpd up all along. lpd's
    refusal is final: the shim says so, once at the start and once at the
    end, and waits for nothing."""
    client = lpd.client()
    run_id = client.request("run.register", argv=["pytest"], cwd="/src", hostname="ci")["result"]["run_id"]
    events = EventWaiter(lpd, types=["run.ended"])
    client.close()  # the run ends: joining it again is a conflict
    events.wait("run.ended", run_id=run_id)
    events.close()
    write_tests(str(tmp_path), "test_ok.py", "def test_ok():\n    pass\n")
    code, output = finish(start_pytest(lpd, str(tmp_path), "-p", "no:cacheprovider", run_id=run_id), timeout=120)
    assert code == 0, output
    assert f"lpd refused this process's run {run_id}: run {run_id} has already ended [conflict]; this process's " \
           "results are not sent to lpd" in output, output
    assert "none of this process's results reached lpd" in output, output
    assert "no lpd answering" not in output and "when lpd is back" not in output, output
