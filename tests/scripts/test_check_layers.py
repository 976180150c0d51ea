"""scripts/check-layers.py: the daemon's dependency rule (README.md, Layout).

Each case copies daemon/ to a temporary tree, plants one include and runs the
real script on it, so the rule is shown to fail where it must, not only to
pass on today's tree.
"""
import pytest

from conftest import SOURCE, run_check


def run(tree):
    return run_check("check-layers.py", tree)


def plant(tree, file, include):
    path = tree / "daemon" / file
    path.write_text(path.read_text() + f'\n#include "daemon/{include}"\n')
    lines = path.read_text().count("\n")
    return f"daemon/{file}:{lines}"


def test_the_tree_follows_the_rule():
    r = run(SOURCE)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "follow the layer rule" in r.stdout


def test_the_copy_alone_passes(tree):
    r = run(tree)
    assert r.returncode == 0, r.stdout


@pytest.mark.parametrize("file,include,words", [
    # a lower layer including one above it
    ("core/event_bus.h", "os/launcher.h", "core/ may include nothing of lpd"),
    ("os/launcher.h", "logs/log_tail.h", "os/ may include core/"),
    ("logs/log_tail.cpp", "jobs/job.h", "logs/ may include core/, os/"),
    # a family reaching into the socket layer outside its ops file
    ("jobs/job_service.cpp", "transport/session.h", "only a family's *_ops file"),
    ("pauses/pause_service.h", "host/logging.h", "only a family's *_ops file"),
    # families in a cycle: runs may include no other family
    ("runs/run_registry.h", "jobs/job.h", "runs/ may include core/, logs/, os/"),
    # the composition root from below
    ("processes/process_ops.cpp", "daemon.h", "the composition root"),
    ("os/run_as.cpp", "config.h", "the composition root"),
    # the per-run monitor links os/ and core/ only
    ("monitor/monitor_main.cpp", "logs/log_file.h", "monitor/ may include core/, os/"),
])
def test_a_wrong_include_fails_naming_file_line_and_rule(tree, file, include, words):
    where = plant(tree, file, include)
    r = run(tree)
    assert r.returncode == 1, r.stdout
    assert f"{where}: " in r.stdout
    assert f"daemon/{include}" in r.stdout
    assert words in r.stdout
    assert "1 include(s) break the layer rule" in r.stdout


def test_an_ops_file_may_include_the_transport(tree):
    plant(tree, "processes/process_ops.cpp", "transport/session.h")
    r = run(tree)
    assert r.returncode == 0, r.stdout


def test_a_folder_without_a_place_in_the_rule_is_refused(tree):
    (tree / "daemon" / "misc").mkdir()
    (tree / "daemon" / "misc" / "util.h").write_text("#pragma once\n")
    r = run(tree)
    assert r.returncode == 2, r.stdout
    assert "misc" in r.stdout


@pytest.mark.parametrize("file,line,include", [
    # the compiler finds these as well as "daemon/...": -I is the source root,
    # and a quoted include is looked up beside the including file first
    ("jobs/job_service.cpp", '#include <daemon/transport/session.h>', "transport/session.h"),
    ("jobs/job_service.cpp", '#include "../transport/session.h"', "transport/session.h"),
    ("core/event_bus.cpp", '#include "../jobs/job.h"', "jobs/job.h"),
    ("jobs/job_service.cpp", '#include "daemon/jobs/../transport/session.h"', "transport/session.h"),
    ("os/run_as.cpp", '#include "../daemon.h"', "daemon.h"),
])
def test_an_include_spelled_another_way_fails_too(tree, file, line, include):
    path = tree / "daemon" / file
    path.write_text(path.read_text() + "\n" + line + "\n")
    r = run(tree)
    assert r.returncode == 1, r.stdout
    assert f"daemon/{include}" in r.stdout
    assert "1 include(s) break the layer rule" in r.stdout


def test_a_same_folder_include_without_the_prefix_passes(tree):
    path = tree / "daemon" / "transport" / "server.cpp"
    path.write_text(path.read_text() + '\n#include "session.h"\n')
    r = run(tree)
    assert r.returncode == 0, r.stdout
