"""The pytest shim's per-test lines are built by string formatting for speed;
they must decode to exactly what messages.test_start / test_finish build and
the shared protocol examples show."""

import json
import os
import sys

import pytest

from lpd_harness import SHIM_PYTHONPATH, SOURCE_DIR

sys.path[:0] = SHIM_PYTHONPATH.split(os.pathsep)

from lpd_pytest import messages  # noqa: E402

EXAMPLES = json.load(open(os.path.join(SOURCE_DIR, "protocol", "examples", "shim_messages.json")))


@pytest.mark.parametrize("nodeid", ["t.py::test_a", 't.py::test_b["quote\\\\x"]', "t.py::test_ü[\n]", "Suite.Test"])
def test_fast_start_line_equals_the_builder(nodeid):
    assert json.loads(messages.encode_test_start(messages.quote(nodeid))) == messages.test_start(nodeid)


@pytest.mark.parametrize("outcome,phase,message", [("passed", "call", ""), ("failed", "call", 'assert "a" == 1'),
                                                   ("error", "setup", "fixture\nbroke"), ("skipped", "setup", "why")])
def test_fast_finish_line_equals_the_builder(outcome, phase, message):
    nodeid = "t.py::test_x[1]"
    line = messages.encode_test_finish(messages.quote(nodeid), outcome, 0.25, message, phase)
    assert json.loads(line) == messages.test_finish(nodeid, outcome, 0.25, message, phase)


def test_fast_lines_match_the_shared_examples():
    by_op = {e["op"]: e for e in EXAMPLES}
    start = by_op["test.start"]
    assert json.loads(messages.encode_test_start(messages.quote(start["nodeid"]))) == start
    finish = by_op["test.finish"]
    line = messages.encode_test_finish(messages.quote(finish["nodeid"]), finish["outcome"], finish["duration"],
                                       finish["message"], finish["phase"])
    assert json.loads(line) == finish
