#include "daemon/os/heap_trim.h"

#include <malloc.h>

#include <boost/asio/post.hpp>

namespace lpd::daemon {

namespace {
std::size_t glibc_free_bytes() { return ::mallinfo2().fordblks; }
void glibc_trim() { ::malloc_trim(0); }
}  // namespace

void keep_freed_heap_for_reuse() {
  ::mallopt(M_TRIM_THRESHOLD, static_cast<int>(kTopKeptHeapBytes));
  ::mallopt(M_MMAP_THRESHOLD, static_cast<int>(kKeptFreeHeapBytes));
}

void trim_heap_soon(const boost::asio::any_io_executor& executor) {
  static bool pending = false;  // one io_context, one thread
  if (pending) return;
  pending = true;
  boost::asio::post(executor, [] {
    pending = false;
    // malloc_trim hands back every free page, in the middle of the heap
    // too: all of it or nothing, so nothing while it is little.
    if (glibc_free_bytes() > kKeptFreeHeapBytes) glibc_trim();
  });
}

QuietHeapTrim::QuietHeapTrim(const boost::asio::any_io_executor& executor, std::chrono::milliseconds quiet,
                             std::function<std::size_t()> free_bytes, std::function<void()> trim)
    : timer_(executor),
      quiet_(quiet),
      free_bytes_(free_bytes ? std::move(free_bytes) : glibc_free_bytes),
      trim_(trim ? std::move(trim) : glibc_trim) {}

void QuietHeapTrim::request() {
  timer_.expires_after(quiet_);  // cancels the wait under way: quiet counts from now
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    if (free_bytes_() > kKeptFreeHeapBytes) trim_();
  });
}

}  // namespace lpd::daemon
