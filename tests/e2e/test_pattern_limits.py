"""Issue 14, h14fixA (attack finding 5): a readiness pattern cannot freeze
lpd. Each line's search has a bounded cost; a pattern that backtracks
without end (`(.*a){25}!x` against 60000-character lines) fails its
ensure at once with an error naming the pattern as too complex, while
lpd keeps answering everyone else: a Pinger on another connection gets
every ping answered (RawClient gives up after 10 s: a frozen loop fails
the test). Ordinary patterns, non-ASCII and (?i) ones included, still
match long lines; an over-long pattern is refused before any spawn.

Every wait is an event: lpctl's reply, lpd's reply to a ping."""

import json
import sys

from test_shared_host import Pinger

PY = sys.executable
HOSTILE = "(.*a){25}!x"
# Floods 60000-character lines of 'a' until killed.
FLOOD = "import sys\nline = 'a' * 60000 + '\\n'\nwhile True:\n    sys.stdout.write(line)\n    sys.stdout.flush()\n"


def ensure(lpd, name, scope, pattern, *argv, keep=False, check=False):
    args = ["--json", "ensure", name, "--scope", scope, "--cwd", scope, "--pattern", pattern, "--timeout", "120"]
    if keep:
        args.append("--keep-on-timeout")
    return lpd.lpctl(*args, "--", *argv, check=check)


def record(lpd, name):
    return next(p for p in lpd.lpctl_json("ps", "-a")["processes"] if p["name"] == name)


def test_catastrophic_pattern_fails_at_once_and_lpd_keeps_serving(lpd, work_dir):
    pinger = Pinger(lpd)
    try:
        r = ensure(lpd, "hostile", work_dir, HOSTILE, PY, "-c", FLOOD)
    finally:
        count, _worst = pinger.stop()  # asserts every ping was answered
    assert r.returncode != 0, r.stdout
    assert "too complex" in r.stderr and HOSTILE in r.stderr, r.stderr
    assert "it is being killed" in r.stderr, r.stderr
    assert count > 0
    # Killed as on a timeout, and said why in its record.
    assert lpd.lpctl("ping").returncode == 0
    gone = record(lpd, "hostile")
    assert gone["failure"] == "its pattern was too complex for a line of its log", gone


def test_catastrophic_pattern_with_keep_on_timeout_leaves_it_running(lpd, work_dir):
    pinger = Pinger(lpd)
    try:
        r = ensure(lpd, "kept", work_dir, HOSTILE, PY, "-c", FLOOD, keep=True)
        assert r.returncode != 0 and "too complex" in r.stderr, r.stderr
        assert "it is left running (--keep-on-timeout)" in r.stderr, r.stderr
        # Nothing more of its flood is searched: lpd still answers while it floods on.
        again = ensure(lpd, "kept", work_dir, HOSTILE, PY, "-c", FLOOD, keep=True, check=True)
    finally:
        pinger.stop()
    reply = json.loads(again.stdout)
    assert reply["outcome"] == "reused" and reply["ready"] is False, reply
    assert "never became ready" in reply["not_ready"] and "too complex" in reply["not_ready"], reply
    lpd.lpctl("kill", "kept", "--scope", work_dir)


def test_ordinary_patterns_still_match_long_lines(lpd, work_dir):
    cases = [
        ("port", r"listening on port (\d+)", "listening on port 8080"),
        ("anchored", r"^\S+ ready$", "x ready"),
        ("accent", "(?i)SERVEUR PRÊT", "serveur prêt"),
        ("word", r"\w+ готов", "сервер готов"),
    ]
    for name, pattern, ready in cases:
        script = f"import sys,time\nsys.stdout.write('x' * 60000 + '\\n' + {ready!r} + '\\n')\nsys.stdout.flush()\ntime.sleep(600)\n"
        r = ensure(lpd, name, work_dir, pattern, PY, "-c", script)
        assert r.returncode == 0, (name, r.stderr)
        reply = json.loads(r.stdout)
        assert reply["ready_line"].endswith(ready), (name, reply)
        assert reply["ready"] is True
        lpd.lpctl("kill", name, "--scope", work_dir)


def test_overlong_pattern_is_refused_before_any_spawn(lpd, work_dir):
    r = ensure(lpd, "long", work_dir, "a" * 5000, PY, "-c", "print('a')")
    assert r.returncode != 0
    assert "5000 bytes long; at most 4096 are allowed" in r.stderr, r.stderr
    assert not [p for p in lpd.lpctl_json("ps", "-a")["processes"] if p["name"] == "long"]
