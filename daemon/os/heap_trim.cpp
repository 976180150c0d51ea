#include "daemon/os/heap_trim.h"

#include <malloc.h>

#include <boost/asio/post.hpp>

namespace lpd::daemon {

void keep_freed_heap_for_reuse() {
  ::mallopt(M_TRIM_THRESHOLD, static_cast<int>(kKeptFreeHeapBytes));
  ::mallopt(M_MMAP_THRESHOLD, static_cast<int>(kKeptFreeHeapBytes));
}

void trim_heap_soon(const boost::asio::any_io_executor& executor) {
  static bool pending = false;  // one io_context, one thread
  if (pending) return;
  pending = true;
  boost::asio::post(executor, [] {
    pending = false;
    // malloc_trim hands back every free page, in the middle of the heap
    // too: all of it or nothing, so nothing while it is one run's worth.
    if (::mallinfo2().fordblks > kKeptFreeHeapBytes) ::malloc_trim(0);
  });
}

}  // namespace lpd::daemon
