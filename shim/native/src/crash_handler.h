#pragma once

#include <string_view>

#include <sys/types.h>

namespace lpd::shim::crash {

/// What the crash handler needs, kept in static storage and published with
/// lock-free atomics, because a signal handler may read it at any moment and
/// may take no lock: the connection's descriptor, the process that owns it
/// (a forked child must not speak on its parent's connection) and the
/// current test's id, JSON-escaped ahead of time.

/// fd < 0: no connection, the handler sends nothing.
void set_connection(int fd, pid_t owner);

/// Escapes nodeid into the buffer the handler reads (double-buffered, so a
/// handler never sees a half-written id). Called with the shim's lock held.
void set_current_test(std::string_view nodeid);

/// Installs the handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT
/// (once; later calls do nothing) and an alternate signal stack for the
/// calling thread if it has none, so a stack overflow is reported too.
/// Returns false if sigaction failed.
bool install();

}  // namespace lpd::shim::crash
