#pragma once

#include <boost/asio/any_io_executor.hpp>

namespace lpd::daemon {

/// Hands heap pages lpd freed back to the kernel (malloc_trim), once the
/// current turn of `executor`'s loop has let go of them. glibc keeps freed
/// blocks for reuse, so without this a flood of connections, or a large run
/// whose results left memory, leaves lpd tens of MB larger for good. Calls
/// in one turn cost one trim.
void trim_heap_soon(const boost::asio::any_io_executor& executor);

}  // namespace lpd::daemon
