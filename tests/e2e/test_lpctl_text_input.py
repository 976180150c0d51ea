"""Issue 14 (h14owner): bytes that are not UTF-8 in a command line, its
environment or its directory. JSON carries text: sent anyway, they would
reach lpd as U+FFFD (another command than the one asked) or be refused
there as something else. lpctl refuses them before connecting, naming the
argument, with exit code 64 (its code for a bad command line); lpd refuses
a message holding them and keeps serving."""

import json
import os
import subprocess

from lpd_harness import LPCTL_BIN, RawClient


def lpctl_bytes(lpd, *args, cwd, env=None):
    """lpctl with arguments given as bytes, as a shell passes them."""
    return subprocess.run([os.fsencode(LPCTL_BIN), b"--socket", os.fsencode(lpd.socket), *args],
                          capture_output=True, timeout=120, cwd=cwd, env=env if env is not None else lpd.env())


def nothing_was_started(lpd, cwd):
    assert json.loads(subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "ps", "-a"], cwd=cwd,
                                     capture_output=True, text=True, env=lpd.env(), check=True).stdout) == \
        {"processes": []}
    assert json.loads(subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "--json", "runs", "-a"], cwd=cwd,
                                     capture_output=True, text=True, env=lpd.env(), check=True).stdout) == []


def test_an_argument_that_is_not_utf8_is_refused_by_name(lpd, work_dir):
    for command in ([b"ensure", b"db", b"--"], [b"run", b"--"]):
        r = lpctl_bytes(lpd, *command, b"sh", b"-c", b"echo caf\xe9", cwd=work_dir)
        assert r.returncode == 64, r
        assert b"argv[2] is not valid UTF-8" in r.stderr and b"echo caf\\xe9" in r.stderr, r.stderr
        assert b"UTF-8 text" in r.stderr
    nothing_was_started(lpd, work_dir)
    # Valid UTF-8 beyond ASCII is passed as it is.
    r = lpctl_bytes(lpd, b"--json", b"ensure", b"cafe", b"--pattern", "^café$".encode(), b"--",
                    b"sh", b"-c", "echo café; exec sleep 600".encode(), cwd=work_dir)
    assert r.returncode == 0 and json.loads(r.stdout)["ready_line"] == "café", r
    assert lpctl_bytes(lpd, b"kill", b"cafe", cwd=work_dir).returncode == 0


def test_an_environment_variable_that_is_not_utf8_is_named(lpd, work_dir):
    env = {os.fsencode(k): os.fsencode(v) for k, v in lpd.env().items()}
    env[b"LPD_TEST_LATIN1"] = b"gr\xfc\xdf"
    for command in ([b"ensure", b"db", b"--"], [b"run", b"--"]):
        r = lpctl_bytes(lpd, *command, b"true", cwd=work_dir, env=env)
        assert r.returncode == 64, r
        assert b"environment variable LPD_TEST_LATIN1 is not valid UTF-8" in r.stderr, r.stderr
        assert b"--env NAME=VALUE" in r.stderr
    nothing_was_started(lpd, work_dir)
    # ensure --clean-env sends none of lpctl's environment: nothing to refuse.
    r = lpctl_bytes(lpd, b"--json", b"ensure", b"clean", b"--clean-env", b"--env", b"PATH=/usr/bin:/bin", b"--",
                    b"sleep", b"600", cwd=work_dir, env=env)
    assert r.returncode == 0, r
    assert lpctl_bytes(lpd, b"kill", b"clean", cwd=work_dir).returncode == 0


def test_a_working_directory_that_is_not_utf8_is_named(lpd, work_dir):
    odd = os.path.join(os.fsencode(work_dir), b"d\xe9j\xe0")
    os.mkdir(odd)
    for command in ([b"ensure", b"db", b"--"], [b"run", b"--"]):
        r = lpctl_bytes(lpd, *command, b"true", cwd=odd)
        assert r.returncode == 64, r
        assert b"the working directory (cwd) is not valid UTF-8" in r.stderr, r.stderr
    nothing_was_started(lpd, work_dir)


def test_lpd_refuses_a_message_that_is_not_utf8_and_keeps_serving(lpd):
    client = RawClient(lpd.socket)
    try:
        client.hello()
        for text in (b'"sleep", "1\xff"', b'"sleep", "1\xed\xa0\x80"', b'"sleep", "1\\udcff"'):
            # Raw bytes, an encoded surrogate (CESU-8), and the escape Python's
            # surrogateescape text turns into: none is UTF-8 text.
            client.send_raw(b'{"id":7,"op":"proc.ensure","name":"u","cwd":"/tmp","env":{"PATH":"/bin"},"argv":['
                            + text + b']}\n')
            reply = client.read_message()
            assert reply["ok"] is False and reply["error"]["code"] == "bad_request", reply
        assert client.request("proc.list", all=True)["result"]["processes"] == []
    finally:
        client.close()
