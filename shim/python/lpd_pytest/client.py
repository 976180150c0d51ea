"""A blocking client for lpd's line protocol, in plain Python (no dependency
beyond the standard library), used by the pytest plugin and its fixtures.

One JSON object per line over a Unix socket; see protocol/README.md."""

import collections
import itertools
import json
import os
import select
import socket
import struct
import time
import warnings

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 1024 * 1024


class LpdUnavailable(Exception):
    """No daemon answers on the socket, or (`refused`) the daemon said why
    it closed the connection (a per-user connection limit): then starting
    one is not the advice."""

    def __init__(self, socket_path, why, refused=False):
        if refused:
            text = f"lpd on {socket_path} refused the connection: {why}"
        else:
            text = f"no lpd answering on {socket_path} ({why}); start one with: lpd start"
        super().__init__(text)
        self.socket_path = socket_path
        self.refused = refused


class LpdError(Exception):
    """The daemon answered a request with an error reply."""

    def __init__(self, code, message):
        super().__init__(f"{message} [{code}]")
        self.code = code
        self.message = message


def default_socket_path():
    """Same rules as lpd: $LPD_SOCKET, root's /run/lpd, $XDG_RUNTIME_DIR, /tmp/lpd-$UID."""
    path = os.environ.get("LPD_SOCKET")
    if path:
        return path
    uid = os.geteuid()
    if uid == 0:
        return "/run/lpd/lpd.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "lpd", "lpd.sock")
    return f"/tmp/lpd-{uid}/lpd.sock"


class Connection:
    """One connection: hello on open, then requests answered in order.
    Pushes that arrive while waiting for a reply are queued for next_push()."""

    def __init__(self, path=None, role="shim", timeout=10.0, **hello_fields):
        self.path = path or default_socket_path()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(self.path)
        except OSError as e:
            self.sock.close()
            raise LpdUnavailable(self.path, e.strerror or str(e)) from None
        self._check_server()
        self._buf = b""
        self._ids = itertools.count(1)
        self._pushes = []
        # Error lines with no id (about one-way messages): the latest few.
        self.notices = collections.deque(maxlen=100)
        try:
            self.hello = self.request("hello", timeout=timeout, role=role, pid=os.getpid(),
                                      protocol=PROTOCOL_VERSION, **hello_fields)
        except BaseException:
            # lpd went away during the hello (a restart): nobody will have
            # this connection to close it (ResourceWarning under
            # filterwarnings = error).
            self.sock.close()
            raise

    def _check_server(self):
        """Whoever can create the socket's path can serve it (in /tmp, another
        user), and would see our requests and forge replies: only root's
        daemon or our own is trusted. Anything else counts as no daemon."""
        try:
            creds = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            _pid, uid, _gid = struct.unpack("3i", creds)
        except OSError as e:
            self.sock.close()
            raise LpdUnavailable(self.path, f"cannot tell who serves the socket: {e}") from None
        if uid not in (0, os.geteuid()):
            self.sock.close()
            why = f"the socket is served by uid {uid}, neither root nor you; refusing to talk to it"
            warnings.warn(f"lpd_pytest: {self.path}: {why}", RuntimeWarning, stacklevel=3)
            raise LpdUnavailable(self.path, why)

    def fileno(self):
        return self.sock.fileno()

    def read_available(self):
        """Takes what the socket holds now, without waiting, into the buffer
        the next request reads from. False when lpd closed the connection
        (or it failed); True otherwise, also when nothing was there."""
        try:
            data = self.sock.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        self._buf += data
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _send(self, obj, pass_fd=None):
        data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        try:
            if pass_fd is None:
                self.sock.sendall(data)
                return
            # The descriptor travels with the message's bytes: one sendmsg.
            sent = socket.send_fds(self.sock, [data], [pass_fd])
            if sent < len(data):
                self.sock.sendall(data[sent:])
        except OSError as e:
            raise self._unavailable(f"send failed: {e}") from None

    def _unavailable(self, why):
        """The LpdUnavailable for a connection that failed: what lpd said
        before closing it (an error line with a null id, e.g. the per-user
        connection limit), if it said anything, else `why`."""
        said = None
        try:
            while len(self._buf) <= MAX_LINE_BYTES:
                chunk = self.sock.recv(65536, socket.MSG_DONTWAIT)
                if not chunk:
                    break
                self._buf += chunk
        except OSError:
            pass
        for line in self._buf.split(b"\n"):
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("ok") is False and msg.get("id") is None:
                said = msg.get("error") or {}
        if said is None and self.notices:
            said = self.notices[-1]
        if said is None:
            return LpdUnavailable(self.path, why)
        if not isinstance(said, dict):
            said = {}
        return LpdUnavailable(self.path, f"{said.get('message', why)} [{said.get('code', 'internal')}]",
                              refused=True)

    def send_line(self, line):
        """Sends one already encoded message (no newline): the cheapest path,
        for per-test notifications."""
        data = (line + "\n").encode()
        try:
            sent = self.sock.send(data)
            if sent < len(data):
                self.sock.sendall(data[sent:])
        except OSError as e:
            raise LpdUnavailable(self.path, f"send failed: {e}") from None

    def wake(self):
        """A blank line: lpd reads this connection's event ring on any bytes."""
        try:
            self.sock.send(b"\n")
        except OSError as e:
            raise LpdUnavailable(self.path, f"send failed: {e}") from None

    def notify(self, op, **fields):
        """A one-way message: no reply, no round trip."""
        fields["op"] = op
        self._send(fields)

    def _read_message(self, deadline):
        while b"\n" not in self._buf:
            if deadline is None:
                wait = None
            else:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    return None
            ready, _, _ = select.select([self.sock], [], [], wait)
            if not ready:
                return None
            try:
                chunk = self.sock.recv(65536)
            except OSError as e:
                raise LpdUnavailable(self.path, f"receive failed: {e}") from None
            if not chunk:
                raise self._unavailable("the daemon closed the connection")
            self._buf += chunk
            if len(self._buf) > MAX_LINE_BYTES + 1 and b"\n" not in self._buf:
                raise LpdError("too_large", "the daemon sent a line over the protocol limit")
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def request(self, op, fields_dict=None, timeout=10.0, pass_fd=None, **fields):
        """Sends a request and returns the reply's result, raising LpdError on
        an error reply. `timeout` is how long to wait for the reply (None:
        without limit, for operations the daemon times out itself). Fields
        go as keywords, or as a dict when one is named like a keyword here
        (a pause's own "timeout"). `pass_fd` goes along with SCM_RIGHTS."""
        if fields_dict:
            fields = dict(fields_dict, **fields)
        msg_id = next(self._ids)
        fields["id"] = msg_id
        fields["op"] = op
        self._send(fields, pass_fd)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            msg = self._read_message(deadline)
            if msg is None:
                raise LpdError("timeout", f"no reply to {op!r} within {timeout} s")
            if "event" in msg:
                self._pushes.append(msg)
                continue
            if "ok" not in msg:
                continue
            if msg.get("id") is None and not msg["ok"]:
                # About an earlier one-way message (or the connection as a
                # whole), not this request: kept, and named if lpd then
                # closes the connection.
                self.notices.append(msg.get("error", {}))
                continue
            if msg.get("id") != msg_id:
                continue
            if msg["ok"]:
                return msg.get("result", {})
            err = msg.get("error", {})
            raise LpdError(err.get("code", "internal"), err.get("message", "request failed"))

    def next_push(self, timeout=None):
        """Next server push as {"event": ..., "data": ...}; None on timeout."""
        if self._pushes:
            return self._pushes.pop(0)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            msg = self._read_message(deadline)
            if msg is None:
                return None
            if "event" in msg:
                return msg
