"""Issue 14: how lpd_pytest.xprocess turns a pytest-xprocess starter into
a proc.ensure request, without a daemon: a compiled regex's flags become
inline flags, popen_kwargs are honoured, accepted without effect, or
refused with the reason, and a startup_check counts only when the starter
overrides it (pytest-xprocess's rule), for its own starter class too."""

import os
import re
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.environ.get("LPD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")),
                                "shim", "python"))

import xprocess as upstream  # noqa: E402  (Debian's pytest-xprocess: its ProcessStarter)

from lpd_pytest.xprocess import ProcessStarter, child_fields, pattern_text, startup_check_of  # noqa: E402


def test_pattern_text_keeps_flags_as_inline_flags():
    assert pattern_text(None) is None
    assert pattern_text("ready") == "ready"
    assert pattern_text(re.compile("ready")) == "ready"
    assert pattern_text(re.compile("^ready$", re.I | re.M)) == "(?im)^ready$"
    assert pattern_text(re.compile("a . b", re.S | re.X)) == "(?sx)a . b"
    assert pattern_text(b"pr\xc3\xaat") == "prêt"


def test_pattern_text_refuses_what_lpd_cannot_match():
    with pytest.raises(ValueError, match="re.ASCII"):
        pattern_text(re.compile(r"\w+", re.ASCII))
    with pytest.raises(TypeError):
        pattern_text(42)


class Base(ProcessStarter):
    pattern = "ready"
    args = ["server", 8080]


def starter(**attributes):
    return type("S", (Base,), attributes)("/ctl", None)


def test_defaults_run_in_the_control_dir_with_our_environment():
    argv, cwd, env = child_fields(starter(), "/ctl")
    assert argv == ["server", "8080"] and cwd == "/ctl" and env == dict(os.environ)


def test_env_replaces_the_environment():
    argv, cwd, env = child_fields(starter(env={"A": "1"}), "/ctl")
    assert env == {"A": "1"}
    argv, cwd, env = child_fields(starter(popen_kwargs={"env": {"B": "2"}}), "/ctl")
    assert env == {"B": "2"}


def test_shell_umask_and_cwd_are_honoured():
    argv, cwd, env = child_fields(starter(args="echo $1", popen_kwargs={"shell": True, "cwd": "/srv"}), "/ctl")
    assert argv == ["/bin/sh", "-c", "echo $1"] and cwd == "/srv"
    argv, cwd, env = child_fields(starter(popen_kwargs={"umask": 0o027}), "/ctl")
    assert argv == ["/bin/sh", "-c", 'umask "$0" && exec "$@"', "0027", "server", "8080"]


def test_kwargs_about_the_parent_side_are_accepted_without_effect():
    kwargs = {"universal_newlines": True, "text": True, "encoding": "utf-8", "errors": "strict", "bufsize": 0,
              "start_new_session": True, "close_fds": True, "restore_signals": True}
    assert child_fields(starter(popen_kwargs=kwargs), "/ctl")[0] == ["server", "8080"]


@pytest.mark.parametrize("key,value", [("stdout", subprocess.DEVNULL), ("stderr", subprocess.STDOUT),
                                       ("stdin", subprocess.PIPE), ("preexec_fn", os.getpid),
                                       ("pass_fds", (3,)), ("executable", "/bin/true"), ("user", "nobody"),
                                       ("close_fds", False), ("no_such_kwarg", 1)])
def test_kwargs_lpd_cannot_honour_are_refused(key, value):
    with pytest.raises(ValueError, match=key if key != "close_fds" else "close_fds=False"):
        child_fields(starter(popen_kwargs={key: value}), "/ctl")


def test_startup_check_counts_only_when_overridden():
    class Checked(Base):
        def startup_check(self):
            return True

    class UpstreamPlain(upstream.ProcessStarter):
        pattern = "ready"
        args = ["server"]

    class UpstreamChecked(UpstreamPlain):
        def startup_check(self):
            return True

    assert startup_check_of(Base("/ctl", None)) is None
    assert startup_check_of(UpstreamPlain("/ctl", None)) is None
    assert startup_check_of(Checked("/ctl", None)) is not None
    assert startup_check_of(UpstreamChecked("/ctl", None)) is not None
