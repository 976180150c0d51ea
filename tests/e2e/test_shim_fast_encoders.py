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


# h13rec (issue 13): lpd reads a test.start and a passed test.finish off the
# line when they are in exactly the text below (protocol/test_record.cpp);
# a byte changed on either side would quietly send every test down lpd's
# slower general path. Both shim writers (the format strings, and the C
# ring writer _lpd_ring.c) and lpd's reader are held to the same text here.
def _cxx_constant(path, name):
    import re
    text = open(os.path.join(SOURCE_DIR, path)).read()
    found = re.search(r'constexpr std::string_view %s = R"\((.*?)\)";' % name, text)
    assert found, f"{name} not found in {path}"
    return found.group(1)


def _c_constant(name):
    import re
    text = open(os.path.join(SOURCE_DIR, "shim", "python", "_lpd_ring.c")).read()
    found = re.search(r'static const char %s\[\] = "(.*?)";' % name, text)
    assert found, f"{name} not found in _lpd_ring.c"
    return found.group(1).encode().decode("unicode_escape")


@pytest.mark.parametrize("duration", [0.0, 1.2345e-05, 0.25, 12.5, 3e-07])
def test_passing_tests_lines_are_in_the_text_lpd_reads_off_the_line(duration):
    reader = {name: _cxx_constant(os.path.join("protocol", "test_record.cpp"), name)
              for name in ("kStartHead", "kFinishHead", "kStartTail", "kPassedMiddle", "kPassedTail")}
    quoted = messages.quote("t.py::test_x[1]")
    start = messages.TEST_START_FORMAT % quoted
    assert start == reader["kStartHead"] + "t.py::test_x[1]" + reader["kStartTail"]
    passed = messages.TEST_PASSED_FORMAT % (quoted, duration)
    assert passed == (reader["kFinishHead"] + "t.py::test_x[1]" + reader["kPassedMiddle"] + repr(duration)
                      + reader["kPassedTail"])
    # The C writer: the same heads, middle and tail around the quoted nodeid.
    assert _c_constant("kStartHead") + quoted + "}" == start
    assert _c_constant("kPassedHead") + quoted + _c_constant("kPassedMiddle") + repr(duration) \
        + _c_constant("kPassedTail") == passed
