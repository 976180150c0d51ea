import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from lpd_harness import Lpd, short_tempdir  # noqa: E402


@pytest.fixture(autouse=True)
def _no_helper_outlives_its_test():
    """h14fixC: helpers outlive lpd on purpose (an lpd restart keeps them),
    so a test's lpd stopping leaves them running: after every test, the
    helpers of every lpd it started are killed and their cgroups removed
    (lpd_harness.Lpd.kill_helpers), whatever the test did."""
    yield
    Lpd.kill_started_helpers()


@pytest.fixture
def lpd():
    daemon = Lpd().start()
    yield daemon
    try:
        if daemon.proc is not None:
            daemon.kill_helpers()  # h14fixC: through lpd while it runs
        daemon.stop()
    finally:
        # LPD_E2E_KEEP=1 keeps lpd's state and log for a post-mortem.
        if not os.environ.get("LPD_E2E_KEEP"):
            shutil.rmtree(daemon.root, ignore_errors=True)


@pytest.fixture
def lpd_unstarted():
    daemon = Lpd()
    yield daemon
    if daemon.proc is not None:
        daemon.kill_helpers()  # h14fixC
        daemon.stop()
    shutil.rmtree(daemon.root, ignore_errors=True)


@pytest.fixture
def work_dir():
    """A project directory for a test's inner suite, short enough for the
    socket paths made inside it; removed afterwards."""
    path = short_tempdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)
