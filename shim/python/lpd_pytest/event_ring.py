"""The shim's side of the event ring (protocol/event_ring.h): one-way
messages written into shared memory that lpd reads, instead of one send()
each. A send wakes lpd, and that wake-up costs the test process about ten
microseconds on a virtual machine; a write into the ring costs about one.

The ring is a sealed memfd passed to lpd once (ring.attach). The shim writes
a record, then moves the write position; lpd reads up to it. Since the memory
outlives the process, a crash loses no record: lpd reads the ring once more
when the connection closes.

The writes go through the C module _lpd_ring when it was built (one call per
record, with a release store: any CPU). Without it they are done here; but
records must become visible to lpd in the order they were written, and
Python cannot issue memory barriers, so then the ring is only used where the
CPU keeps stores in order (x86), and elsewhere the shim sends on the socket."""

import fcntl
import mmap
import os
import platform
import struct
import time

try:
    import _lpd_ring
except ImportError:  # not built here (a sanitizer build, no compiler): Python it is
    _lpd_ring = None

MAGIC = 0x5244504C  # "LPDR"
VERSION = 1
HEADER_BYTES = 64
WRITE_OFFSET = 8
READ_OFFSET = 16
WRITE_INDEX = WRITE_OFFSET // 8  # in the header seen as 8-byte words
READ_INDEX = READ_OFFSET // 8
MAX_RECORD_BYTES = 64 * 1024
DEFAULT_CAPACITY = 256 * 1024
# Added to the read-by margin: the clock reads around ring.attach and the
# record's publication are not instants.
READ_BY_SLACK_NS = 100_000

_LENGTH = struct.Struct("<I")
_MAX_RECORD_SIZE = _LENGTH.size + MAX_RECORD_BYTES


def supported():
    """True where the ring is safe and possible: memfds, and stores kept in
    order (the C writer's release store, or an x86 CPU)."""
    ordered = _lpd_ring is not None or platform.machine() in ("x86_64", "AMD64", "i386", "i686")
    return ordered and hasattr(os, "memfd_create") and hasattr(fcntl, "F_ADD_SEALS")


class EventRing:
    def __init__(self, capacity=DEFAULT_CAPACITY):
        if capacity & (capacity - 1):
            raise ValueError("the ring's capacity must be a power of two")
        self.capacity = capacity
        self.fd = os.memfd_create("lpd-event-ring", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(self.fd, HEADER_BYTES + capacity)
            # lpd maps it too: a file that could shrink would crash lpd.
            fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
            self.memory = mmap.mmap(self.fd, HEADER_BYTES + capacity)
        except BaseException:
            os.close(self.fd)
            raise
        struct.pack_into("<II", self.memory, 0, MAGIC, VERSION)
        # The positions are shared with lpd while it reads: each must move
        # in one 8-byte store and be read in one load. Item access on a
        # memoryview cast to "Q" does that; struct.pack_into does not (it
        # zero-fills first, so lpd could see a position of 0).
        self.positions = memoryview(self.memory)[:HEADER_BYTES].cast("Q")
        # The C writer, when built: start() / passed() / write() return -1
        # (no room), 0 (written) or 1 (written, and lpd's window has passed).
        self.fast = _lpd_ring.Writer(self.memory) if _lpd_ring is not None else None
        self.window = 0.0  # lpd's window, from ring.attach
        self.last_wake = 0.0
        self._write_position = 0
        self.free = min(capacity, _MAX_RECORD_SIZE)
        self.mask = capacity - 1
        self.limit = HEADER_BYTES + capacity

    def fileno(self):
        return self.fd

    @property
    def write_position(self):
        return self.positions[WRITE_INDEX]

    @property
    def read_position(self):
        return self.positions[READ_INDEX]

    def set_window(self, seconds):
        """lpd's window, from ring.attach. Forgets the last wake-up, so the
        next record wakes the (new) lpd at once."""
        self.window = seconds
        self.last_wake = 0.0
        if self.fast is not None:
            self.fast.set_window(seconds)

    def set_read_by(self, lpd_clock_ns, before_ns, after_ns):
        """Whether the writer may skip a wake-up while lpd's read-by word
        promises a read (ring.attach's "read_by"; `lpd_clock_ns` its
        "monotonic_ns", None from an lpd without it). Only the C writer does:
        the word is only safe with a fence between publishing a record and
        reading the clock, which Python cannot issue. And only when lpd's
        clock at the reply fell between ours before the request
        (`before_ns`) and after it (`after_ns`): then the two clocks are at
        most that round trip apart (a time namespace could shift lpd's),
        which becomes the writer's margin. A margin of half a window or more
        would save little: off."""
        margin = 0
        if self.fast is not None and lpd_clock_ns is not None and before_ns <= lpd_clock_ns <= after_ns:
            margin = after_ns - before_ns + READ_BY_SLACK_NS
            if margin * 2 >= self.window * 1e9:
                margin = 0
        if self.fast is not None:
            self.fast.set_read_by_margin(margin)

    def set_reader(self, fd):
        """The socket (`fd`) of the connection the ring is attached to: the
        C writer trusts lpd's read-by word only while lpd holds the other
        end (a killed lpd's promise stays in the header). -1: attached to
        none, no promise is trusted. The caller keeps `fd` open while set."""
        if self.fast is not None:
            self.fast.set_reader(fd)

    def set_phase_mark(self, on):
        """Whether lpd reads a test's phases from the header's phase mark
        (ring.attach's "phase_mark"); only the C writer sets the mark, the
        Python one keeps writing test.phase records."""
        if self.fast is not None:
            self.fast.set_phase_mark(bool(on))

    def write(self, line):
        """Appends one message, as the C writer answers: -1 no room now, 0
        written, 1 written and lpd's window has passed since the last
        wake-up (the caller wakes lpd)."""
        if self.fast is not None:
            return self.fast.write(line)
        if not self.try_write(line):
            return -1
        now = time.monotonic()
        if now - self.last_wake < self.window:
            return 0
        self.last_wake = now
        return 1

    def try_write(self, line):
        """Appends one message (a JSON line without its newline). False when
        it does not fit now: too big for a record, or lpd is behind."""
        if self.fast is not None:
            return self.fast.write(line) >= 0
        data = line.encode()
        length = len(data)
        size = _LENGTH.size + length
        if size > self.free:
            if length > MAX_RECORD_BYTES:
                return False
            # What lpd consumed since we last looked is free again. Kept at
            # most one largest record, so that any record that fits the
            # cached figure is also within the record limit.
            self.free = min(_MAX_RECORD_SIZE,
                            self.capacity - (self._write_position - self.positions[READ_INDEX]))
            if size > self.free:
                return False
        position = self._write_position
        start = HEADER_BYTES + (position & self.mask)
        end = start + size
        if end <= self.limit:
            self.memory[start:end] = _LENGTH.pack(length) + data
        else:
            record = _LENGTH.pack(length) + data
            first = self.limit - start
            self.memory[start:self.limit] = record[:first]
            self.memory[HEADER_BYTES:HEADER_BYTES + size - first] = record[first:]
        # Published last, in one store: lpd reads nothing past it.
        self._write_position = position = position + size
        self.free -= size
        self.positions[WRITE_INDEX] = position
        return True

    def close(self):
        try:
            if self.fast is not None:
                self.fast.close()
            self.positions.release()
            self.memory.close()
        finally:
            os.close(self.fd)
