/* The pytest shim's per-test writes into its event ring, in C.
 *
 * lpd_pytest/event_ring.py can do all of this in Python, but a trivial test
 * leaves the shim's code cold, and then each Python-level step of writing a
 * record costs about a microsecond: the shim measured about 17 µs per test
 * that way. Here one call formats the line, writes the record, publishes it
 * and says whether lpd's window has passed. Layout: protocol/event_ring.h.
 *
 * Optional: without this module (no compiler, a sanitizer build) the shim
 * falls back to event_ring.py. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

enum {
  kHeaderBytes = 64,
  kWriteOffset = 8,
  kReadOffset = 16,
  kPhaseMarkOffset = 24,
  kReadByOffset = 32,
  kMaxRecordBytes = 64 * 1024,
};

typedef struct {
  PyObject_HEAD
  Py_buffer view; /* the ring's whole mapping; view.buf == NULL once closed */
  uint64_t capacity;
  uint64_t window_ns;
  uint64_t last_wake_ns;
  uint64_t read_by_margin_ns; /* 0: lpd's read-by word is not used (see set_read_by_margin) */
  int reader_fd;              /* the connection of the lpd that writes the read-by word; -1: none */
  uint64_t reader_seen_ns;    /* when reader_fd was last seen open at lpd's end; 0: not yet */
  int phase_mark;          /* lpd reads phases from the header (ring.attach said "phase_mark") */
  int start_in_ring;       /* the running test's test.start went into the ring... */
  uint64_t start_position; /* ...beginning at this position */
} Writer;

static uint64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int Writer_init(Writer* self, PyObject* args, PyObject* kwargs) {
  (void)kwargs;
  PyObject* memory;
  if (!PyArg_ParseTuple(args, "O", &memory)) return -1;
  if (PyObject_GetBuffer(memory, &self->view, PyBUF_WRITABLE) < 0) return -1;
  const Py_ssize_t len = self->view.len;
  const uint64_t capacity = len > kHeaderBytes ? (uint64_t)(len - kHeaderBytes) : 0;
  if (capacity == 0 || (capacity & (capacity - 1)) != 0 || ((uintptr_t)self->view.buf % 8) != 0) {
    PyBuffer_Release(&self->view);
    self->view.buf = NULL;
    PyErr_SetString(PyExc_ValueError, "not an event ring: want an aligned 64-byte header and a power-of-two data size");
    return -1;
  }
  self->capacity = capacity;
  self->window_ns = 0;
  self->last_wake_ns = 0;
  self->read_by_margin_ns = 0;
  self->reader_fd = -1;
  self->reader_seen_ns = 0;
  self->phase_mark = 0;
  self->start_in_ring = 0;
  self->start_position = 0;
  return 0;
}

static void Writer_dealloc(Writer* self) {
  if (self->view.buf != NULL) PyBuffer_Release(&self->view);
  Py_TYPE(self)->tp_free((PyObject*)self);
}

static void copy_in(Writer* self, uint64_t position, const char* bytes, size_t n) {
  char* data = (char*)self->view.buf + kHeaderBytes;
  const size_t start = (size_t)(position & (self->capacity - 1));
  const size_t first = n < self->capacity - start ? n : (size_t)(self->capacity - start);
  memcpy(data + start, bytes, first);
  memcpy(data, bytes + first, n - first);
}

/* Appends one record made of up to three pieces. Returns -1 when it does
 * not fit now (lpd is behind, or it is over the record limit), 1 when it was
 * written, lpd's window has passed since the last wake-up and lpd promised
 * no read after now (the caller sends a wake-up), 0 when it was written and
 * no wake-up is due. */

/* Whether the lpd that promised a read still holds its end of reader_fd.
 * A killed lpd's promise outlives it in the header; trusted, the shim would
 * not wake anyone, so it would not notice lpd is gone and would not hand
 * the ring to the next lpd: a crash then would lose what the ring holds,
 * however long ago lpd died. Looked at with a poll() that does not wait,
 * at most once per kReaderRecheckNs (a poll per record cost the shim 0.3 us
 * a record): a record relies on an lpd seen alive that recently, and no
 * lpd is killed and replaced in less. */
enum { kReaderRecheckNs = 1000000 };
static int reader_alive(Writer* self, uint64_t now) {
  if (self->reader_fd < 0) return 0;
  if (self->reader_seen_ns != 0 && now - self->reader_seen_ns < kReaderRecheckNs) return 1;
  struct pollfd p = {.fd = self->reader_fd, .events = POLLRDHUP, .revents = 0};
  if (poll(&p, 1, 0) < 0 || (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0) return 0;
  self->reader_seen_ns = now;
  return 1;
}

static int append(Writer* self, const char* a, size_t an, const char* b, size_t bn, const char* c, size_t cn) {
  const size_t length = an + bn + cn;
  if (self->view.buf == NULL || length == 0 || length > kMaxRecordBytes) return -1;
  char* header = (char*)self->view.buf;
  uint64_t* write_word = (uint64_t*)(header + kWriteOffset);
  uint64_t* read_word = (uint64_t*)(header + kReadOffset);
  const uint64_t position = __atomic_load_n(write_word, __ATOMIC_RELAXED); /* only we move it */
  const uint64_t read = __atomic_load_n(read_word, __ATOMIC_ACQUIRE);
  const uint64_t size = 4 + length;
  if (position - read > self->capacity || self->capacity - (position - read) < size) return -1;
  const uint32_t length32 = (uint32_t)length; /* little-endian, as the layout says */
  copy_in(self, position, (const char*)&length32, 4);
  copy_in(self, position + 4, a, an);
  copy_in(self, position + 4 + an, b, bn);
  copy_in(self, position + 4 + an + bn, c, cn);
  /* Released last: lpd reads nothing past it, and sees all before it. */
  __atomic_store_n(write_word, position + size, __ATOMIC_RELEASE);
  /* The record is visible to lpd before the clock is read: a read lpd
   * starts after that time sees it (lpd fences before it reads too). */
  if (self->read_by_margin_ns != 0) __atomic_thread_fence(__ATOMIC_SEQ_CST);
  const uint64_t now = monotonic_ns();
  if (now - self->last_wake_ns < self->window_ns) return 0;
  if (self->read_by_margin_ns != 0) {
    /* lpd starts another read at or after this time (its clock, which is
     * ours within the margin): it will find the record without a wake-up,
     * if that lpd still lives. */
    const uint64_t read_by = __atomic_load_n((uint64_t*)(header + kReadByOffset), __ATOMIC_ACQUIRE);
    if (now + self->read_by_margin_ns < read_by && reader_alive(self, now)) return 0;
  }
  self->last_wake_ns = now;
  return 1;
}

static const char kStartHead[] = "{\"op\":\"test.start\",\"nodeid\":";
static const char kPassedHead[] = "{\"op\":\"test.finish\",\"nodeid\":";
static const char kPassedMiddle[] = ",\"outcome\":\"passed\",\"phase\":\"call\",\"duration\":";
static const char kPassedTail[] = ",\"message\":\"\"}";

/* write(line) -> -1 / 0 / 1 (see append) */
static PyObject* Writer_write(Writer* self, PyObject* line) {
  Py_ssize_t n;
  const char* text = PyUnicode_AsUTF8AndSize(line, &n);
  if (text == NULL) return NULL;
  return PyLong_FromLong(append(self, text, (size_t)n, "", 0, "", 0));
}

/* start(quoted_nodeid): test.start, the nodeid already a JSON string */
static PyObject* Writer_start(Writer* self, PyObject* quoted) {
  Py_ssize_t n;
  const char* text = PyUnicode_AsUTF8AndSize(quoted, &n);
  if (text == NULL) return NULL;
  const uint64_t position =
      self->view.buf != NULL ? __atomic_load_n((uint64_t*)((char*)self->view.buf + kWriteOffset), __ATOMIC_RELAXED) : 0;
  const int written = append(self, kStartHead, sizeof kStartHead - 1, text, (size_t)n, "}", 1);
  self->start_in_ring = written >= 0;
  self->start_position = position;
  return PyLong_FromLong(written);
}

/* The phase mark's code for `phase` (protocol/event_ring.h PhaseMark), 0 for none. */
static uint64_t phase_code(const char* phase, Py_ssize_t n) {
  if (n == 5 && memcmp(phase, "setup", 5) == 0) return 1;
  if (n == 4 && memcmp(phase, "call", 4) == 0) return 2;
  if (n == 8 && memcmp(phase, "teardown", 8) == 0) return 3;
  return 0;
}

static const char kPhaseHead[] = "{\"op\":\"test.phase\",\"nodeid\":";
static const char kPhaseMiddle[] = ",\"phase\":\"";

/* phase(quoted_nodeid, phase): test.phase, the phase a plain word (call,
 * teardown, setup): when a test enters it, so that lpd pins a crash on it. */
static PyObject* Writer_phase(Writer* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "phase(quoted_nodeid, phase)");
    return NULL;
  }
  Py_ssize_t n, pn;
  const char* quoted = PyUnicode_AsUTF8AndSize(args[0], &n);
  if (quoted == NULL) return NULL;
  const char* phase = PyUnicode_AsUTF8AndSize(args[1], &pn);
  if (phase == NULL) return NULL;
  const uint64_t code = phase_code(phase, pn);
  if (self->phase_mark && self->start_in_ring && code != 0 && self->view.buf != NULL) {
    /* No record: one word in the header says it (0: written, no wake-up
     * needed; lpd reads the mark when it needs the phase). */
    uint64_t* mark = (uint64_t*)((char*)self->view.buf + kPhaseMarkOffset);
    __atomic_store_n(mark, (self->start_position << 8) | code, __ATOMIC_RELEASE);
    return PyLong_FromLong(0);
  }
  char rest[96];
  if ((size_t)pn > sizeof rest - sizeof kPhaseMiddle - 2) return PyLong_FromLong(-1);
  memcpy(rest, kPhaseMiddle, sizeof kPhaseMiddle - 1);
  memcpy(rest + sizeof kPhaseMiddle - 1, phase, (size_t)pn);
  memcpy(rest + sizeof kPhaseMiddle - 1 + pn, "\"}", 2);
  const size_t rest_n = sizeof kPhaseMiddle - 1 + (size_t)pn + 2;
  return PyLong_FromLong(append(self, kPhaseHead, sizeof kPhaseHead - 1, quoted, (size_t)n, rest, rest_n));
}

/* passed(quoted_nodeid, duration): the test.finish of a test that passed */
static PyObject* Writer_passed(Writer* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "passed(quoted_nodeid, duration)");
    return NULL;
  }
  Py_ssize_t n;
  const char* quoted = PyUnicode_AsUTF8AndSize(args[0], &n);
  if (quoted == NULL) return NULL;
  const double duration = PyFloat_AsDouble(args[1]);
  if (duration == -1.0 && PyErr_Occurred()) return NULL;
  /* The same text as Python's repr(float), so both paths write one line. */
  char* number = PyOS_double_to_string(duration, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
  if (number == NULL) return NULL;
  char rest[128];
  const int rest_n = snprintf(rest, sizeof rest, "%s%s%s", kPassedMiddle, number, kPassedTail);
  PyMem_Free(number);
  if (rest_n < 0 || (size_t)rest_n >= sizeof rest) return PyLong_FromLong(-1);
  return PyLong_FromLong(append(self, kPassedHead, sizeof kPassedHead - 1, quoted, (size_t)n, rest, (size_t)rest_n));
}

/* set_window(seconds): lpd's window, from ring.attach; also forgets the last
 * wake-up, so the next record wakes the (new) lpd at once. */
static PyObject* Writer_set_window(Writer* self, PyObject* seconds) {
  const double value = PyFloat_AsDouble(seconds);
  if (value == -1.0 && PyErr_Occurred()) return NULL;
  self->window_ns = value > 0 ? (uint64_t)(value * 1e9) : 0;
  self->last_wake_ns = 0;
  Py_RETURN_NONE;
}

/* set_read_by_margin(ns): use lpd's read-by word (ring.attach said
 * "read_by"), with `ns` for how far lpd's clock may be from ours; 0: do not
 * use it (wake lpd once per window, as before). */
static PyObject* Writer_set_read_by_margin(Writer* self, PyObject* ns) {
  const unsigned long long value = PyLong_AsUnsignedLongLong(ns);
  if (value == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
  self->read_by_margin_ns = (uint64_t)value;
  Py_RETURN_NONE;
}

/* set_reader(fd): the socket of the connection the ring is attached to,
 * whose lpd writes the read-by word; -1 when there is none (lpd away): then
 * no promise is trusted. The caller keeps `fd` open while it is set. */
static PyObject* Writer_set_reader(Writer* self, PyObject* fd) {
  const long value = PyLong_AsLong(fd);
  if (value == -1 && PyErr_Occurred()) return NULL;
  self->reader_fd = value < 0 || value > INT32_MAX ? -1 : (int)value;
  self->reader_seen_ns = 0;
  Py_RETURN_NONE;
}

/* set_phase_mark(on): whether lpd reads a test's phases from the header's
 * phase mark (ring.attach's "phase_mark") instead of test.phase records. */
static PyObject* Writer_set_phase_mark(Writer* self, PyObject* on) {
  const int value = PyObject_IsTrue(on);
  if (value < 0) return NULL;
  self->phase_mark = value;
  Py_RETURN_NONE;
}

/* close(): lets go of the mapping, so that it can be closed */
static PyObject* Writer_close(Writer* self, PyObject* unused) {
  (void)unused;
  if (self->view.buf != NULL) {
    PyBuffer_Release(&self->view);
    self->view.buf = NULL;
  }
  Py_RETURN_NONE;
}

static PyMethodDef Writer_methods[] = {
    {"write", (PyCFunction)Writer_write, METH_O, "write(line) -> -1 no room, 0 written, 1 written and a wake-up is due"},
    {"start", (PyCFunction)Writer_start, METH_O, "start(quoted_nodeid): a test.start record; returns as write()"},
    {"passed", (PyCFunction)(void (*)(void))Writer_passed, METH_FASTCALL,
     "passed(quoted_nodeid, duration): a passed test.finish record; returns as write()"},
    {"phase", (PyCFunction)(void (*)(void))Writer_phase, METH_FASTCALL,
     "phase(quoted_nodeid, phase): a test.phase record; returns as write()"},
    {"set_window", (PyCFunction)Writer_set_window, METH_O, "set_window(seconds): lpd's window; next record wakes"},
    {"set_read_by_margin", (PyCFunction)Writer_set_read_by_margin, METH_O,
     "set_read_by_margin(ns): skip wake-ups while lpd's read-by word is ns past our clock; 0: never"},
    {"set_reader", (PyCFunction)Writer_set_reader, METH_O,
     "set_reader(fd): the attached connection's socket, whose lpd's read-by word is trusted while it is open; -1: none"},
    {"set_phase_mark", (PyCFunction)Writer_set_phase_mark, METH_O,
     "set_phase_mark(on): say test phases in the header's phase mark, not in records"},
    {"close", (PyCFunction)Writer_close, METH_NOARGS, "release the ring's memory"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WriterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_lpd_ring.Writer",
    .tp_basicsize = sizeof(Writer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Writer(memory): writes records into an event ring mapped at `memory`",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Writer_init,
    .tp_dealloc = (destructor)Writer_dealloc,
    .tp_methods = Writer_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_lpd_ring", .m_doc = "lpd_pytest's event ring writer", .m_size = -1,
};

PyMODINIT_FUNC PyInit__lpd_ring(void) {
  if (PyType_Ready(&WriterType) < 0) return NULL;
  PyObject* m = PyModule_Create(&module);
  if (m == NULL) return NULL;
  Py_INCREF(&WriterType);
  if (PyModule_AddObject(m, "Writer", (PyObject*)&WriterType) < 0) {
    Py_DECREF(&WriterType);
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
