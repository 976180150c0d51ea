#!/usr/bin/python3
"""Runs pytest-xprocess's own test suite, unchanged, against lpd's `xprocess`
fixture (issue 14), with a private lpd of a build tree.

    scripts/xprocess_upstream_suite.py CHECKOUT [--build BUILD_DIR] [-- PYTEST_ARGS...]

CHECKOUT is a checkout of github.com/pytest-dev/pytest-xprocess (its
xprocess/ package and tests/); this script fetches nothing. The checkout's
xprocess package is put first on PYTHONPATH so that its tests import the
ProcessStarter of the version under test (Debian ships 0.22, whose pattern
is still abstract); pytest-xprocess's plugin is never loaded: plugin
autoload is off (PYTEST_DISABLE_PLUGIN_AUTOLOAD, which pytester's inner
runs inherit too) and `-p no:xprocess` is passed; lpd's plugin comes in by
PYTEST_PLUGINS=lpd_pytest. lpd runs on a socket and state directory of its
own, stopped at the end. The exit code is pytest's.

Expected: every test passes except test_popen_kwargs[s1|s2|s3], which read
pytest-xprocess's private Popen object (xprocess.resources[-1].popen):
lpd spawns the helper, the test process has no Popen of it."""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def start_lpd(lpd_bin, root):
    """A private lpd; returns its Popen once it said READY on --ready-fd."""
    read_fd, write_fd = os.pipe()
    log = open(os.path.join(root, "lpd.log"), "ab")
    proc = subprocess.Popen([lpd_bin, "start", "--foreground", "--socket", os.path.join(root, "lpd.sock"),
                             "--state-dir", os.path.join(root, "state"), "--ready-fd", str(write_fd)],
                            pass_fds=[write_fd], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    os.close(write_fd)
    log.close()
    with os.fdopen(read_fd, "rb") as ready:
        report = ready.read().decode(errors="replace")
    if not report.startswith("READY"):
        proc.kill()
        proc.wait()
        sys.exit(f"lpd did not start (see {root}/lpd.log): {report!r}")
    return proc


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkout", help="a checkout of pytest-xprocess (with xprocess/ and tests/)")
    parser.add_argument("--build", default=os.path.join(SOURCE_DIR, "build", "release"),
                        help="lpd build tree (default: build/release)")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    checkout = os.path.abspath(args.checkout)
    if not os.path.isdir(os.path.join(checkout, "tests")) or not os.path.isdir(os.path.join(checkout, "xprocess")):
        sys.exit(f"{checkout} is not a pytest-xprocess checkout (no tests/ and xprocess/)")
    build = os.path.abspath(args.build)
    lpd_bin = next((p for p in (os.path.join(build, "lpd"), os.path.join(build, "daemon", "lpd"))
                    if os.access(p, os.X_OK)), None)
    if lpd_bin is None:
        sys.exit(f"no lpd at {lpd_bin}: build it, or name the build tree with --build")

    root = tempfile.mkdtemp(prefix="lpd-xprocess-suite-", dir="/tmp")  # short: a socket path is <= 107 bytes
    lpd = start_lpd(lpd_bin, root)
    try:
        env = dict(os.environ)
        env.pop("PYTEST_ADDOPTS", None)
        env["LPD_SOCKET"] = os.path.join(root, "lpd.sock")
        env["PYTEST_PLUGINS"] = "lpd_pytest"
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        env["PYTHONPATH"] = os.pathsep.join([checkout, os.path.join(SOURCE_DIR, "shim", "python"),
                                             os.path.join(build, "python")])
        command = ["/usr/bin/python3", "-m", "pytest", "-p", "no:xprocess", "-v", "-rfE",
                   "-o", f"cache_dir={os.path.join(root, 'cache')}", *args.pytest_args]
        print("lpd:", lpd_bin, "socket", env["LPD_SOCKET"], flush=True)
        print("running in", os.path.join(checkout, "tests") + ":", " ".join(command), flush=True)
        # tox.ini runs the suite from tests/ (changedir=tests/).
        code = subprocess.call(command, cwd=os.path.join(checkout, "tests"), env=env)
    finally:
        lpd.send_signal(signal.SIGTERM)
        try:
            lpd.wait(timeout=60)
        except subprocess.TimeoutExpired:
            lpd.kill()
            lpd.wait()
        shutil.rmtree(root, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
