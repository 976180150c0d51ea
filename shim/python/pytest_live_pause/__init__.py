"""pytest-live-pause's import name, served by lpd's plugin (lpd_pytest).

Scripts and tests written for pytest-live-pause keep working unchanged:
`from pytest_live_pause import checkpoint`, `-p pytest_live_pause`,
`PYTEST_PLUGINS=pytest_live_pause`, the `live_pause` and `pause_run_id`
fixtures, and the `pytest-live-pause` command (cli.py). There is no second
copy of the plugin: loading this module as a plugin loads lpd_pytest through
`pytest_plugins`, which pytest skips when lpd_pytest is already registered
(its entry point, -p lpd_pytest, PYTEST_PLUGINS), so no hook runs twice.
This module defines no hook and no fixture of its own for the same reason.

Loaded under this name (or imported by a conftest), the plugin mirrors the
run into a pause directory (--pause-dir, default pause_dir.default_pause_dir())
and prints the run id at session start, as pytest-live-pause does.

PYTEST_DONT_REWRITE
"""

from lpd_pytest import Decision, LpdError, LpdUnavailable, checkpoint
from lpd_pytest import LivePause

# What makes pytest load lpd's plugin when it loads this module as one.
pytest_plugins = ["lpd_pytest"]

__all__ = ["checkpoint", "Decision", "LivePause", "LpdError", "LpdUnavailable"]
