"""What the tests of scripts/check-*.py share: the source tree, a copy of
daemon/ to plant files in, and running a check script on a tree."""
import os
import shutil
import subprocess
import sys

import pytest

SOURCE = os.environ.get("LPD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def run_check(script, tree):
    """scripts/`script` run on `tree`: its CompletedProcess (text)."""
    return subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", script), str(tree)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def tree(tmp_path):
    """A copy of daemon/ (its sources, not the dashboard's assets) under a temporary root."""
    shutil.copytree(os.path.join(SOURCE, "daemon"), tmp_path / "daemon",
                    ignore=shutil.ignore_patterns("*.js", "*.css", "*.html", "*.png"))
    return tmp_path
