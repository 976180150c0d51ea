#include "daemon/os/heap_trim.h"

#include <malloc.h>

#include <boost/asio/post.hpp>

namespace lpd::daemon {

void trim_heap_soon(const boost::asio::any_io_executor& executor) {
  static bool pending = false;  // one io_context, one thread
  if (pending) return;
  pending = true;
  boost::asio::post(executor, [] {
    pending = false;
    ::malloc_trim(0);
  });
}

}  // namespace lpd::daemon
