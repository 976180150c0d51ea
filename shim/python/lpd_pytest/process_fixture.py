"""The `lpd_process` pytest fixture: helper servers supervised by lpd,
driven by the same starter classes people write for pytest-xprocess.

    from xprocess import ProcessStarter      # or lpd_pytest.xprocess.ProcessStarter

    class Starter(ProcessStarter):
        pattern = "ready to accept connections"
        args = ["postgres", "-D", "data"]

    @pytest.fixture(scope="session")
    def db(lpd_process):
        pid, logfile = lpd_process.ensure("db", Starter)
        yield
        lpd_process.getinfo("db").terminate()

lpd_pytest's plugin provides `lpd_process` (and `xprocess`, when
pytest-xprocess's own plugin is not active) wherever it loads: the entry
point, PYTEST_PLUGINS=lpd_pytest, `lpctl run`. This module is kept for
`-p lpd_pytest.process_fixture`, which loads only the fixture; the object
is lpd_pytest.xprocess.XProcess (see there for the semantics).

PYTEST_DONT_REWRITE"""

import pytest

from .process_plugin import xprocess_of
from .xprocess import RUNNING_STATES, ProcessStarter, XProcess, XProcessInfo  # noqa: F401 (the old names)

LpdProcess = XProcess
LpdProcessInfo = XProcessInfo


@pytest.fixture(scope="session")
def lpd_process(request):
    """Session-scoped handle on lpd's supervised helper processes."""
    return xprocess_of(request.config)
