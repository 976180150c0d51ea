"""The messages a shim sends, as plain dicts, built by pure functions.

Both shims (this plugin and the native C ABI library in shim/native) must
produce what protocol/examples/shim_messages.json shows: the same keys and
value types. tests/e2e/test_shim_protocol_examples.py checks this side, and
tests/native/shim_messages_test.cpp the native one.

Requests get "id" and "op" added by client.Connection.request; the *_fields
functions return what goes beside them. Notifications are complete."""

import json
import os

PROTOCOL_VERSION = 1

# The most bytes of a test's name lpd keeps (protocol/nodeid.h kMaxNodeidBytes).
MAX_NODEID_BYTES = 16 * 1024
# No str of this many characters or fewer can pass MAX_NODEID_BYTES in UTF-8.
_SURELY_SHORT = MAX_NODEID_BYTES // 4


def fnv1a_64(data):
    """FNV-1a, 64 bits, over `data` (bytes), as lpd's protocol::fnv1a_64."""
    h = 0xcbf29ce484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def wire_nodeid(name):
    """`name` (a nodeid, or a JUnit classname, name or file) as lpd keeps
    it, exactly as lpd's protocol::shortened_nodeid makes it: itself up to
    MAX_NODEID_BYTES bytes of UTF-8; longer (pytest makes such ids of long
    parametrize values), its first bytes cut at a character boundary and
    "[lpd: cut, N bytes, fnv1a-64 HHHHHHHHHHHHHHHH]". Shortened here too so
    that a record always fits the event ring and a line the socket."""
    if len(name) <= _SURELY_SHORT:
        return name
    data = name.encode("utf-8", "surrogatepass")
    if len(data) <= MAX_NODEID_BYTES:
        return name
    tag = "[lpd: cut, %d bytes, fnv1a-64 %016x]" % (len(data), fnv1a_64(data))
    cut = MAX_NODEID_BYTES - len(tag)
    while cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return data[:cut].decode("utf-8", "surrogatepass") + tag


def request(msg_id, op, fields=None):
    """A whole request as it goes on the wire."""
    message = dict(fields or {})
    message["id"] = msg_id
    message["op"] = op
    return message


def hello_fields(pid, client, role="shim"):
    return {"protocol": PROTOCOL_VERSION, "role": role, "client": client, "pid": pid}


# The most bytes of argv run.register carries (each argument's length plus
# one): lpd's kMaxArgvBytes (daemon/runs/run.h).
MAX_ARGV_BYTES = 64 * 1024


def bounded_argv(argv, most_bytes=MAX_ARGV_BYTES):
    """`argv` as lpd keeps it (daemon/runs/run.h bounded_argv, the same
    rule): its leading arguments while they fit `most_bytes`, then one
    saying how many more and how large. A retry's pytest argv carries a
    --deselect per crashed test: 70 of 16 KB made run.register a line over
    lpd's 1 MiB, and lpd closed every connection of that process."""
    argv = list(argv)
    sizes = [len(os.fsencode(arg)) + 1 for arg in argv]  # bytes, as the kernel and lpd count them
    size = kept = 0
    for arg_size in sizes:
        if size + arg_size > most_bytes:
            break
        size += arg_size
        kept += 1
    if kept == len(argv):
        return argv
    return argv[:kept] + [f"... {len(argv) - kept} more argument(s), {sum(sizes[kept:])} bytes, not kept"]


def run_register_fields(argv, cwd, hostname, run_id=None, worker_id=None):
    """run_id / worker_id are left out when empty (a new run; the controller);
    argv is cut to MAX_ARGV_BYTES (bounded_argv)."""
    fields = {"argv": bounded_argv(argv), "cwd": cwd, "hostname": hostname}
    if run_id:
        fields["run_id"] = run_id
    if worker_id:
        fields["worker_id"] = worker_id
    return fields


def pause_request_fields(pause_id, run_id, kind, nodeid, timeout, task="", original_failure="",
                         worker_id="", hostname="", cwd=""):
    return {
        "pause_id": pause_id, "run_id": run_id, "kind": kind, "nodeid": wire_nodeid(nodeid or ""),
        "task": task or "", "original_failure": original_failure or "", "timeout": timeout,
        "worker_id": worker_id or "", "hostname": hostname, "cwd": cwd,
    }


def test_start(nodeid):
    return {"op": "test.start", "nodeid": wire_nodeid(nodeid)}


def test_finish(nodeid, outcome, duration, message="", phase="call", **details):
    """`details` (issue 12), each left out when None: longrepr, file, line,
    classname, name, reruns, failure_reason, wasxfail, system_out; in that order on the
    wire, after the fields every test.finish has."""
    message = {"op": "test.finish", "nodeid": wire_nodeid(nodeid), "outcome": outcome, "phase": phase,
               "duration": float(duration), "message": message or ""}
    unknown = set(details) - set(TEST_FINISH_DETAILS)
    if unknown:
        raise TypeError(f"test_finish: unknown fields {sorted(unknown)}")
    for key in TEST_FINISH_DETAILS:
        value = details.get(key)
        if value is not None:
            message[key] = wire_nodeid(value) if key in _NAME_DETAILS else value
    return message


# The optional test.finish fields, in their order on the wire.
TEST_FINISH_DETAILS = ("longrepr", "file", "line", "classname", "name", "reruns", "failure_reason", "wasxfail",
                       "system_out")  # x14py (issue 14): helper log lines of a failed test
# The details that are names: shortened as the nodeid is.
_NAME_DETAILS = frozenset(("file", "classname", "name"))


def test_phase(nodeid, phase):
    """The phase a test (or, with nodeid "", the session) enters: lpd pins
    a crash on it. Test phases: call, teardown, setup (a rerun); session:
    sessionstart, collection, exit."""
    return {"op": "test.phase", "nodeid": wire_nodeid(nodeid or ""), "phase": phase}


def session_error(phase, nodeid, message, longrepr):
    """A failure outside any test: phase collection | sessionstart |
    sessionfinish | exit; nodeid is the collector's for a collection error."""
    return {"op": "session.error", "phase": phase, "nodeid": wire_nodeid(nodeid or ""), "message": message or "",
            "longrepr": longrepr or ""}


def collection_items(nodeids):
    return {"op": "collection.items", "nodeids": [wire_nodeid(n) for n in nodeids]}


def collection_item_chunks(nodeids, max_count=1000, max_bytes=60000):
    """collection.items lines of at most `max_count` nodeids and about
    `max_bytes` bytes each (so every chunk fits one event ring record)."""
    head = '{"op":"collection.items","nodeids":['
    chunk, size = [], len(head) + 2
    for nodeid in nodeids:
        quoted = _dumps_str(wire_nodeid(nodeid))
        if chunk and (len(chunk) >= max_count or size + len(quoted) + 1 > max_bytes):
            yield head + ",".join(chunk) + "]}"
            chunk, size = [], len(head) + 2
        chunk.append(quoted)
        size += len(quoted) + 1
    if chunk:
        yield head + ",".join(chunk) + "]}"


def crash_notice(signal, nodeid):
    return {"op": "crash.notice", "signal": int(signal), "nodeid": wire_nodeid(nodeid or "")}


# The per-test messages again, as ready-to-send lines: the same objects as
# test_start() / test_finish() (checked against the shared examples), built
# with string formatting because json.dumps of a dict costs several
# microseconds per test, and a suite of many tiny tests pays it twice each.
def quote(text):
    """A JSON string literal, exactly as json.dumps writes a str, minus the
    Python-level calls json.dumps makes before it gets there."""
    return _dumps_str(text)


def quote_nodeid(nodeid):
    """quote(wire_nodeid(nodeid)): a nodeid as a JSON string literal, as
    lpd keeps it (the per-test hooks' one quoting of each test)."""
    return _dumps_str(wire_nodeid(nodeid))


def encode_test_start(quoted_nodeid):
    return TEST_START_FORMAT % quoted_nodeid


def encode_test_phase(quoted_nodeid, phase):
    return TEST_PHASE_FORMAT % (quoted_nodeid, phase)


def encode(message):
    """Any message dict as one compact line (the rare, non per-test path)."""
    return json.dumps(message, separators=(",", ":"))


def encode_test_finish(quoted_nodeid, outcome, duration, message="", phase="call"):
    if outcome == "passed" and phase == "call" and not message:
        return TEST_PASSED_FORMAT % (quoted_nodeid, float(duration))
    return _TEST_FINISH % (quoted_nodeid, outcome, phase, float(duration),
                           _dumps_str(message) if message else '""')


# The per-test hooks format these in place (a function call is a measurable
# part of a trivial test's cost): the same lines as the functions above.
# lpd reads a test.start and a passed test.finish in exactly this text off
# the line, without decoding it (protocol/test_record.h): change a byte here
# (or in _lpd_ring.c, which writes the same) and lpd takes the slower path.
TEST_START_FORMAT = '{"op":"test.start","nodeid":%s}'
TEST_PASSED_FORMAT = '{"op":"test.finish","nodeid":%s,"outcome":"passed","phase":"call","duration":%r,"message":""}'
TEST_PHASE_FORMAT = '{"op":"test.phase","nodeid":%s,"phase":"%s"}'
_TEST_FINISH = '{"op":"test.finish","nodeid":%s,"outcome":"%s","phase":"%s","duration":%r,"message":%s}'
_dumps_str = json.encoder.encode_basestring_ascii


def worker_results_chunks(worker_id, results, most=500, most_bytes=60000):
    """worker.results lines (xdist controller, for a worker that died): the
    outcome of each test it reported, `results` {nodeid: [outcome, phase,
    message, duration, longrepr]}, or {nodeid: duration} for a test that
    passed, at most `most` and about `most_bytes` a line so each fits one
    event ring record."""
    chunk, size = [], 0
    for nodeid, kept in results.items():
        if kept.__class__ is float:
            outcome, phase, message, duration, longrepr = "passed", "call", "", kept, ""
        else:
            outcome, phase, message, duration, longrepr = kept
        item = {"nodeid": wire_nodeid(nodeid), "outcome": outcome, "phase": phase, "message": message[:1000],
                "duration": float(duration), "longrepr": longrepr}
        item_size = len(json.dumps(item))
        if chunk and (len(chunk) >= most or size + item_size > most_bytes):
            yield encode({"op": "worker.results", "worker_id": worker_id, "results": chunk})
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk:
        yield encode({"op": "worker.results", "worker_id": worker_id, "results": chunk})
