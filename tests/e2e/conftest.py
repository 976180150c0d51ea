import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from lpd_harness import Lpd  # noqa: E402


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
