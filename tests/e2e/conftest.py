import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from lpd_harness import Lpd, short_tempdir  # noqa: E402


@pytest.fixture
def lpd():
    daemon = Lpd().start()
    yield daemon
    try:
        daemon.stop()
    finally:
        shutil.rmtree(daemon.root, ignore_errors=True)


@pytest.fixture
def lpd_unstarted():
    daemon = Lpd()
    yield daemon
    if daemon.proc is not None:
        daemon.stop()
    shutil.rmtree(daemon.root, ignore_errors=True)


@pytest.fixture
def work_dir():
    """A project directory for a test's inner suite, short enough for the
    socket paths made inside it; removed afterwards."""
    path = short_tempdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)
