"""Issue 12, "JUnit parity": one suite runs once under `lpctl run --junit`
with pytest's own `--junitxml` on the same command line; every testcase of
the two reports must agree on classname, name, outcome element, message and
text, apart from the differences README.md lists under "JUnit report:
differences from pytest's --junitxml" (ALLOWED_DIFFERENCES below)."""

import datetime
import os
import socket
import subprocess
import xml.etree.ElementTree as ET

import pytest

from lpd_harness import LPCTL_BIN, PYTHON, EventWaiter, killed_if_left_running, short_tempdir, write_tests

CONFTEST = '''
import pytest

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup <broke> & \\"quoted\\"")

@pytest.fixture
def broken_teardown():
    yield
    raise ValueError("teardown\\nbroke")
'''

SUITE = '''
import sys
import pytest


def test_passes():
    pass


def test_fails_with_specials():
    # newlines, XML specials, control characters pytest shows as #xNN, an
    # emoji pytest shows as #x1F600, and U+007F which it keeps
    message = "line one\\nline <two> & \\"three\\" 'four'\\x07bell\\x1b[0m\\x7fdel \\u00e9 \\U0001F600"
    assert False, message


def helper_that_fails(x):
    assert x == 2, "helper says no"


def test_fails_in_helper():
    helper_that_fails(3)


def test_setup_error(broken_setup):
    pass


def test_teardown_error(broken_teardown):
    pass


def test_fails_then_teardown_errors(broken_teardown):
    assert 1 == 2


def test_skip_call():
    pytest.skip("skipped <inside> the test & more\\nsecond line")


@pytest.mark.skip(reason="marked skip")
def test_skip_marked():
    pass


@pytest.mark.skipif(sys.platform == "linux", reason="not on linux")
def test_skipif():
    pass


@pytest.mark.xfail(reason="known bug #12")
def test_xfail():
    assert False


@pytest.mark.xfail
def test_xfail_no_reason():
    assert False


def test_xfail_imperative():
    pytest.xfail("imperative reason")


@pytest.mark.xfail(reason="may pass")
def test_xpass_non_strict():
    pass


@pytest.mark.xfail(reason="must fail", strict=True)
def test_xpass_strict():
    pass


@pytest.mark.parametrize("value", ["a[1]", "b::c", "\\u00e9", "x/y.py", "tab\\there"])
def test_params(value):
    assert value != "b::c"


@pytest.mark.parametrize("n", [1, 2], ids=["first[id]", "\\u00fcn\\u00ef"])
def test_ids(n):
    pass


class TestGroup:
    def test_method_passes(self):
        pass

    def test_method_fails(self):
        assert [1, 2] == [1, 3]

    class TestNested:
        def test_inner(self):
            pass
'''

DEEP = '''
def test_in_subpackage():
    assert 1 + 1 == 2


def test_fails_in_subpackage():
    x = {"key": "value"}
    assert x == {"key": "other"}
'''

BROKEN_IMPORT = '''
import module_that_does_not_exist

def test_never_collected():
    pass
'''

# (classname, name) -> why lpd's testcase differs from pytest's there.
ALLOWED_DIFFERENCES = {
    # pytest writes a second <testcase> of the same name for the teardown
    # error of a test that already failed in its call; lpd writes one
    # testcase per test (its failure) and keeps the teardown error out.
    ("test_parity", "test_fails_then_teardown_errors"):
        "one testcase per test: pytest's second testcase (the teardown error) is not written",
}


def run_suite(lpd, work_dir, *pytest_args):
    """Runs the suite once under lpctl run, with pytest's --junitxml too;
    returns (lpctl's exit code, output, lpd's report root, pytest's root)."""
    lpd_xml = os.path.join(work_dir, "lpd.xml")
    pytest_xml = os.path.join(work_dir, "pytest.xml")
    result = subprocess.run(
        [LPCTL_BIN, "--socket", lpd.socket, "run", "--junit", lpd_xml, "--", PYTHON, "-m", "pytest",
         "-p", "no:cacheprovider", "-q", "--continue-on-collection-errors", f"--junitxml={pytest_xml}",
         *pytest_args, "."],
        cwd=work_dir, capture_output=True, text=True, timeout=240, env=lpd.env())
    output = result.stdout + result.stderr
    assert os.path.exists(pytest_xml), output
    assert os.path.exists(lpd_xml), output
    return result.returncode, output, ET.parse(lpd_xml).getroot(), ET.parse(pytest_xml).getroot()


def cases_of(root):
    """(classname, name) -> [testcase, ...] in document order."""
    cases = {}
    for case in root.iter("testcase"):
        cases.setdefault((case.get("classname"), case.get("name")), []).append(case)
    return cases


def outcome_of(case):
    """The outcome element of a testcase as (tag, message, type, text);
    (None, ...) for a passed test."""
    for child in case:
        if child.tag in ("failure", "error", "skipped"):
            return child.tag, child.get("message"), child.get("type"), child.text
    return None, None, None, None


@pytest.fixture
def suite_dir():
    d = short_tempdir()
    write_tests(d, "conftest.py", CONFTEST)
    write_tests(d, "test_parity.py", SUITE)
    write_tests(d, "test_broken_import.py", BROKEN_IMPORT)
    os.makedirs(os.path.join(d, "sub"))
    write_tests(d, "sub/__init__.py", "")
    write_tests(d, "sub/test_deep.py", DEEP)
    yield d
    subprocess.run(["rm", "-rf", d])


@pytest.mark.parametrize("xdist", [False, True], ids=["single", "xdist"])
def test_lpd_junit_matches_pytest_junitxml_case_by_case(lpd, suite_dir, xdist):
    code, output, ours, theirs = run_suite(lpd, suite_dir, *(["-n", "2"] if xdist else []))
    assert code == 1, output  # failures: pytest's own exit code

    our_cases, their_cases = cases_of(ours), cases_of(theirs)
    assert len(their_cases) == 27, sorted(their_cases)  # the suite ran as written
    assert set(our_cases) == set(their_cases), (sorted(set(our_cases) ^ set(their_cases)), output)
    compared = 0
    for key, their_list in sorted(their_cases.items()):
        our_list = our_cases[key]
        assert len(our_list) == 1, key
        if key in ALLOWED_DIFFERENCES:
            # pytest: the failure, then a second testcase for the teardown error.
            assert [outcome_of(c)[0] for c in their_list] == ["failure", "error"], key
            their_list = their_list[:1]
        assert len(their_list) == 1, key
        assert outcome_of(our_list[0]) == outcome_of(their_list[0]), key
        compared += 1
    assert compared == len(their_cases)

    # Spot checks that the comparison saw what it should (not two empty reports).
    by_name = {name: outcome_of(cases[0]) for (_, name), cases in our_cases.items()}
    assert by_name["test_fails_with_specials"][0] == "failure"
    assert "#x07bell#x1B[0m\x7fdel \u00e9 #x1F600" in by_name["test_fails_with_specials"][1]
    assert "\n" in by_name["test_fails_with_specials"][1]  # the attribute kept its newline
    assert "test_parity.py:22: " in by_name["test_fails_in_helper"][3]  # file:line of the failure
    assert by_name["test_teardown_error"][1] == 'failed on teardown with "ValueError: teardown\nbroke"'
    assert by_name["test_skip_call"][1] == "skipped <inside> the test & more\nsecond line"
    assert by_name["test_xfail"][:3] == ("skipped", "known bug #12", "pytest.xfail")
    assert by_name["test_xfail_imperative"][1] == "imperative reason"
    assert by_name["test_xpass_non_strict"][0] is None
    assert by_name["test_xpass_strict"][:2] == ("failure", "[XPASS(strict)] must fail")
    assert by_name["test_broken_import"][:2] == ("error", "collection failure")
    assert ("test_parity.TestGroup.TestNested", "test_inner") in our_cases
    assert ("sub.test_deep", "test_in_subpackage") in our_cases
    assert ("test_parity", "test_params[b::c]") in our_cases

    # The suite: same counts, the host's name, an ISO timestamp no later
    # than pytest's own start, and wall-clock time that covers pytest's.
    our_suite, their_suite = ours.find("testsuite"), theirs.find("testsuite")
    for attribute in ("name", "failures", "skipped", "hostname"):
        assert our_suite.get(attribute) == their_suite.get(attribute), attribute
    # pytest also counts the second testcase of each allowed difference.
    for attribute in ("tests", "errors"):
        assert int(our_suite.get(attribute)) == int(their_suite.get(attribute)) - len(ALLOWED_DIFFERENCES), attribute
    assert our_suite.get("hostname") == socket.gethostname()
    started = datetime.datetime.fromisoformat(our_suite.get("timestamp"))
    assert started <= datetime.datetime.fromisoformat(their_suite.get("timestamp"))
    assert float(our_suite.get("time")) + 0.002 >= float(their_suite.get("time"))


FAILING = """
def test_fails():
    assert 6 * 7 == 43, "wrong answer"


def test_passes():
    pass
"""


def test_failure_reason_given_on_resume_is_in_both_reports(lpd):
    """`lpctl resume --failure-reason` on a failure pause: pytest-live-pause's
    rule (the reason is appended to the failure report) holds in pytest's
    --junitxml and, with the same text, in lpd's --junit."""
    work_dir = short_tempdir()
    write_tests(work_dir, "test_f.py", FAILING)
    lpd_xml, pytest_xml = os.path.join(work_dir, "lpd.xml"), os.path.join(work_dir, "pytest.xml")
    events = EventWaiter(lpd, types=["pause.created"])
    run = subprocess.Popen(
        [LPCTL_BIN, "--socket", lpd.socket, "run", "--pause-on-failure", "--junit", lpd_xml, "--", PYTHON, "-m",
         "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={pytest_xml}", "test_f.py"],
        cwd=work_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=lpd.env())
    try:
        with killed_if_left_running(run):
            created = events.wait("pause.created", timeout=120)
            assert created["nodeid"] == "test_f.py::test_fails"
            lpd.lpctl("resume", created["pause_id"], "--failure-reason", "known flaky: ticket <44> & co")
            output, _ = run.communicate(timeout=120)
    finally:
        events.close()
    assert run.returncode == 1, output
    ours = cases_of(ET.parse(lpd_xml).getroot())
    theirs = cases_of(ET.parse(pytest_xml).getroot())
    assert set(ours) == set(theirs) == {("test_f", "test_fails"), ("test_f", "test_passes")}
    our_failure, their_failure = outcome_of(ours[("test_f", "test_fails")][0]), outcome_of(theirs[("test_f", "test_fails")][0])
    assert our_failure == their_failure
    assert our_failure[0] == "failure" and our_failure[1] == "AssertionError: wrong answer\nassert (6 * 7) == 43"
    assert "external failure reason (lpd)" in our_failure[3]
    assert "known flaky: ticket <44> & co" in our_failure[3]
    subprocess.run(["rm", "-rf", work_dir])


CRASHING = """
import ctypes


def test_a_first():
    pass


def test_b_segv():
    ctypes.string_at(0)


def test_c_after():
    pass


def test_d_after():
    pass
"""


def test_tests_a_crash_kept_from_running_are_listed_as_not_run(lpd):
    """pytest's own report is never written when the process dies; lpd's
    lists the crash with its traceback and the tests that never ran."""
    work_dir = short_tempdir()
    write_tests(work_dir, "test_crash.py", CRASHING)
    lpd_xml = os.path.join(work_dir, "lpd.xml")
    result = subprocess.run(
        [LPCTL_BIN, "--socket", lpd.socket, "run", "--junit", lpd_xml, "--", PYTHON, "-m", "pytest",
         "-p", "no:cacheprovider", "-q", "test_crash.py"],
        cwd=work_dir, capture_output=True, text=True, timeout=240, env=lpd.env())
    assert result.returncode != 0, result.stdout + result.stderr
    root = ET.parse(lpd_xml).getroot()
    cases = {name: outcome_of(c[0]) for (_, name), c in cases_of(root).items()}
    assert set(cases) == {"test_a_first", "test_b_segv", "test_c_after", "test_d_after"}, cases
    assert cases["test_a_first"][0] is None
    tag, message, kind, text = cases["test_b_segv"]
    assert (tag, kind) == ("error", "crash") and "SIGSEGV" in message, cases["test_b_segv"]
    assert "Fatal Python error" in text and "test_crash.py" in text, text
    for name in ("test_c_after", "test_d_after"):
        tag, message, kind, _ = cases[name]
        assert (tag, kind) == ("skipped", "lpd.notrun"), cases[name]
        assert message.startswith("not run: a test process crashed (") and "SIGSEGV" in message, message
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("errors"), suite.get("skipped")) == ("4", "1", "2")
    subprocess.run(["rm", "-rf", work_dir])


BLOCKING = """
import time

import pytest


@pytest.mark.parametrize("i", range(12))
def test_block(i):
    time.sleep(600)
"""


def test_under_xdist_the_tests_that_never_ran_are_listed_once_each(lpd):
    """pytest -n 2, stopped while each worker is in its first test: the
    other ten never ran, and the report lists each of the twelve once. lpd
    hears the collected nodeids from the xdist controller, once for the run
    (its workers send none): without them the ten would be missing."""
    work_dir = short_tempdir()
    write_tests(work_dir, "test_block.py", BLOCKING)
    lpd_xml = os.path.join(work_dir, "lpd.xml")
    events = EventWaiter(lpd, types=["test.start"])
    run = subprocess.Popen(
        [LPCTL_BIN, "--socket", lpd.socket, "run", "--junit", lpd_xml, "--", PYTHON, "-m", "pytest",
         "-p", "no:cacheprovider", "-q", "-n", "2", "test_block.py"],
        cwd=work_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=lpd.env())
    with killed_if_left_running(run):
        first = events.wait("test.start", timeout=120)
        second = events.wait("test.start", timeout=120)
        assert first["worker_id"] != second["worker_id"], (first, second)
        lpd.lpctl("stop", first["run_id"], "--grace", "0")
        out, _ = run.communicate(timeout=240)
    assert run.returncode != 0, out
    root = ET.parse(lpd_xml).getroot()
    names = sorted(case.get("name") for case in root.iter("testcase"))
    assert names == sorted(f"test_block[{i}]" for i in range(12)), names
    outcomes = [outcome_of(case) for case in root.iter("testcase")]
    running = {first["nodeid"], second["nodeid"]}
    for case, (tag, message, kind, _) in zip(root.iter("testcase"), outcomes):
        nodeid = f"test_block.py::{case.get('name')}"
        if nodeid in running:
            assert (tag, kind) == ("error", "interrupted"), (nodeid, tag, message, kind)
        else:
            assert (tag, kind) == ("skipped", "lpd.notrun"), (nodeid, tag, message, kind)
            assert message == "not run: the run was stopped", message
    subprocess.run(["rm", "-rf", work_dir])
