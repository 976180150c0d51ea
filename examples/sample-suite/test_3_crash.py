"""A test that crashes the whole test process (SIGSEGV). lpd pins the
crash on this test, with the Python traceback faulthandler printed."""

import ctypes


def read_through_null():
    return ctypes.string_at(0)  # dereferences address 0


def test_segfault():
    read_through_null()
