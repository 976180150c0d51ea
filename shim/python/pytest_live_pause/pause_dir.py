"""Where pytest-live-pause's files go when no --pause-dir is given.

pytest-live-pause writes to /tmp/pytest-live-pause, one directory for every
user of the host: whoever makes it first owns it, and everyone else's runs
would live in a directory another user controls (who could move, hide or
replace them). lpd keeps the layout below it and adds the user's uid to the
one shared name, as lpd does for its own socket directory (/tmp/lpd-$UID):
/tmp/pytest-live-pause-<uid>. lpd makes it 0700 and refuses one that is a
link, another user's, or writable by others."""

import os

DEFAULT_PARENT = "/tmp"
DEFAULT_NAME = "pytest-live-pause"


def default_pause_dir(uid=None):
    return os.path.join(DEFAULT_PARENT, f"{DEFAULT_NAME}-{os.geteuid() if uid is None else uid}")


def wanted(config, compat_name_used):
    """(DIR, explicit): the pause directory this session mirrors into, an
    absolute path, and whether --pause-dir named it; (None, False) for none
    (lpd's own name without --pause-dir: lpd's state directory only).
    `compat_name_used`: the session loaded pytest_live_pause (`-p
    pytest_live_pause`, PYTEST_PLUGINS=pytest_live_pause, or a conftest
    importing it: all before pytest_configure)."""
    given = config.getoption("pause_dir", None)
    if given:
        return os.path.abspath(os.path.expanduser(given)), True
    if compat_name_used:
        return default_pause_dir(), False
    return None, False


class Mirror:
    """This session's pause directory, once lpd set it up."""

    def __init__(self, pause_dir, explicit):
        self.pause_dir = pause_dir
        self.explicit = explicit
        self.run_dir = None

    def attach(self, conn, run_id):
        """Asks lpd (pause.mirror) to keep DIR/runs/<run_id>. Raises
        LpdError with lpd's reason (a link, another user's directory)."""
        reply = conn.request("pause.mirror", run_id=run_id, pause_dir=self.pause_dir, timeout=30)
        self.run_dir = reply.get("run_dir")
        return self.run_dir

    def header(self, run_id):
        return (f"live pause: run_id {run_id}; pause files in {self.run_dir}; "
                f"watch with: pytest-live-pause watch --run-id {run_id}")
