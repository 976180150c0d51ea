"""What lpd's JUnit needs of a test that did not simply pass, computed the
way pytest's own --junitxml writes it (_pytest/junitxml.py, pytest 7):
the testcase's classname and name (its mangle_test_address), file and line
(report.location), and the message and body of <failure>, <error> and
<skipped>. Pure functions of a report; lpd writes what they give.

The one thing left to lpd: for an error in setup or teardown, junitxml's
message is `failed on setup with "<reason>"`; the shim sends the reason and
lpd adds the wrap (it also makes errors for crashes, with no report)."""

import re

try:
    from _pytest.junitxml import mangle_test_address
except ImportError:  # pragma: no cover - a pytest that moved it: the same rule
    def mangle_test_address(address):
        path, bracket, params = address.partition("[")
        names = path.split("::")
        names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
        names[-1] += bracket + params
        return names

MAX_MESSAGE_BYTES = 4096
# A whole record in lpd's event ring is at most 64 KiB; the rest of a
# test.finish (nodeid up to 16 KiB and the short fields) fits in what is left.
MAX_LONGREPR_CHARS = 40 * 1024
LONGREPR_HEAD_CHARS = 4096


def testcase_names(nodeid, prefix=None):
    """(classname, name) as junitxml writes them (before XML escaping)."""
    names = mangle_test_address(nodeid)
    classnames = names[:-1]
    if prefix:
        classnames.insert(0, prefix)
    return ".".join(classnames), names[-1]


def cut_message(text):
    """At most MAX_MESSAGE_BYTES of UTF-8, cut on a character boundary."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= MAX_MESSAGE_BYTES:
        return text
    return data[:MAX_MESSAGE_BYTES].decode("utf-8", "ignore")


def cut_longrepr(text, limit=MAX_LONGREPR_CHARS):
    """The failure text, within what fits one ring record once encoded as
    JSON (escapes can make a character up to 6 bytes: the limit counts the
    encoded size). A longer one keeps its head and its tail (where pytest
    puts the crash's file:line and the E lines), with a marked cut."""
    encoded = _encoded_size(text)
    if encoded <= limit:
        return text
    head = text[:LONGREPR_HEAD_CHARS]
    budget = limit - _encoded_size(head) - 100
    tail_start = len(text)
    used = 0
    while tail_start > len(head):
        size = _encoded_size(text[tail_start - 1])
        if used + size > budget:
            break
        used += size
        tail_start -= 1
    cut = tail_start - len(head)
    return f"{head}\n[... lpd_pytest cut {cut} characters ...]\n{text[tail_start:]}"


def _encoded_size(text):
    if text.isascii() and '"' not in text and "\\" not in text and not _CONTROL.search(text):
        return len(text)
    return sum(1 if 0x20 <= ord(c) < 0x7F and c not in '"\\' else (2 if c in '"\\\n\r\t\b\f' else (6 if ord(c) < 0x10000 else 12))
               for c in text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def reprcrash_message(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash is not None else str(report.longrepr)


def report_fields(report):
    """(outcome, phase, message, longrepr, wasxfail) of a kept report that
    did not pass, as junitxml writes them."""
    if report.failed:
        if hasattr(report, "wasxfail"):  # junitxml: <skipped message="xfail-marked test passes unexpectedly">
            return "failed", report.when, "xfail-marked test passes unexpectedly", "", True
        outcome = "failed" if report.when == "call" else "error"
        return outcome, report.when, reprcrash_message(report), str(report.longrepr), None
    if hasattr(report, "wasxfail"):
        reason = report.wasxfail
        if reason.startswith("reason: "):
            reason = reason[8:]
        return "skipped", report.when, reason, "", True
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        filename, lineno, reason = longrepr
        if reason.startswith("Skipped: "):
            reason = reason[9:]
        return "skipped", report.when, reason, f"{filename}:{lineno}: {reason}", None
    return "skipped", report.when, str(longrepr or ""), str(longrepr or ""), None


def location_fields(location):
    """file, line (None when pytest has none) from a report's or item's location."""
    if not location:
        return None, None
    line = location[1] if len(location) > 1 else None
    return location[0], line if isinstance(line, int) else None


# Report sections process_plugin adds to a failed test: the lines each
# helper wrote to its log while the test ran (issue 14).
HELPER_SECTION_PREFIX = "lpd helper "
MAX_SYSTEM_OUT_CHARS = 16 * 1024


def system_out(report):
    """The <system-out> of a failed test in lpd's JUnit: its helper log
    sections, each under its title, at most MAX_SYSTEM_OUT_CHARS (the
    newest part); None when there is none."""
    if report is None or not report.failed:
        return None
    parts = [f"--- {title} ---\n{text}" for title, text in getattr(report, "sections", ())
             if title.startswith(HELPER_SECTION_PREFIX)]
    if not parts:
        return None
    text = "\n".join(parts)
    if len(text) > MAX_SYSTEM_OUT_CHARS:
        cut = len(text) - MAX_SYSTEM_OUT_CHARS
        text = f"[... lpd_pytest cut {cut} characters ...]\n" + text[cut:]
    return text
