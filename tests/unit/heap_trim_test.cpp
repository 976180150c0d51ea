// QuietHeapTrim (stop 39): runs' results leaving memory hand the heap back
// only once lpd is quiet, so back-to-back runs reuse it without a page
// fault per page.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/os/heap_trim.h"

using lpd::daemon::kKeptFreeHeapBytes;
using lpd::daemon::QuietHeapTrim;

TEST_CASE("the heap is handed back once, after the quiet period that follows the last request") {
  boost::asio::io_context io;
  std::size_t free_bytes = kKeptFreeHeapBytes + 1;
  int trims = 0;
  bool second_request_made = false;
  bool trimmed_after_second = false;
  QuietHeapTrim trim(io.get_executor(), std::chrono::milliseconds(20), [&] { return free_bytes; }, [&] {
    ++trims;
    trimmed_after_second = second_request_made;
  });
  trim.request();
  // A second request before the first wait ended starts the wait again:
  // still one trim, after it.
  boost::asio::post(io, [&] {
    second_request_made = true;
    trim.request();
  });
  io.run();  // returns once the timer fired: no other work
  CHECK(trims == 1);
  CHECK(trimmed_after_second);
}

TEST_CASE("little free heap is kept: nothing is handed back") {
  boost::asio::io_context io;
  int trims = 0;
  QuietHeapTrim trim(io.get_executor(), std::chrono::milliseconds(1), [] { return kKeptFreeHeapBytes; },
                     [&] { ++trims; });
  trim.request();
  io.run();
  CHECK(trims == 0);
}

TEST_CASE("a trimmer destroyed before its wait ends trims nothing") {
  boost::asio::io_context io;
  int trims = 0;
  {
    QuietHeapTrim trim(io.get_executor(), std::chrono::hours(1), [] { return kKeptFreeHeapBytes * 4; },
                       [&] { ++trims; });
    trim.request();
  }
  io.run();  // the cancelled wait completes at once
  CHECK(trims == 0);
}
