#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace lpd::daemon {

/// Freed heap past which a flood of connections that closed is handed back
/// to the kernel at once (trim_heap_soon), and past which an idle lpd
/// hands it back (QuietHeapTrim).
inline constexpr std::size_t kKeptFreeHeapBytes = std::size_t{16} << 20;

/// Free heap at the top of the heap that glibc's free() keeps rather than
/// handing back itself (M_TRIM_THRESHOLD). A run of 10,000 tests leaves
/// about 24 MB free when its results leave memory (stop 39); at 16 MiB
/// free() handed it back, and the next run took every page again, one
/// page fault each (13-15 µs on the 2-core CI VM, bench/README): 1,500-
/// 2,000 per run, 3 µs of lpd's CPU per test. QuietHeapTrim hands it back
/// once runs stop ending.
inline constexpr std::size_t kTopKeptHeapBytes = std::size_t{64} << 20;

/// Sets glibc's malloc to keep up to kTopKeptHeapBytes free at the top of
/// the heap (M_TRIM_THRESHOLD) and to take blocks under kKeptFreeHeapBytes
/// from the heap (M_MMAP_THRESHOLD), not from mmap, which hands every block
/// back when it is freed. Larger blocks (a 50,000-test run's results) are
/// still mapped and unmapped on their own. Call once, before the daemon's
/// loop.
void keep_freed_heap_for_reuse();

/// Hands heap pages lpd freed back to the kernel (malloc_trim), once the
/// current turn of `executor`'s loop has let go of them, when more than
/// kKeptFreeHeapBytes are free (glibc's mallinfo2): a flood of connections
/// then does not leave lpd tens of MB larger for good. Calls in one turn
/// cost one check.
void trim_heap_soon(const boost::asio::any_io_executor& executor);

/// QuietHeapTrim hands freed heap back to the kernel once lpd has been
/// quiet: `quiet` after the last request() (each request starts the wait
/// again), when more than kKeptFreeHeapBytes are free. Runs' results leave
/// memory at each run's end; on a busy host the next run takes the same
/// pages again (no page fault), and only an lpd that stopped seeing runs
/// end gives them back.
class QuietHeapTrim {
 public:
  static constexpr std::chrono::seconds kQuiet{30};
  /// `free_bytes` and `trim` default to glibc's (mallinfo2().fordblks,
  /// malloc_trim(0)); tests pass their own.
  explicit QuietHeapTrim(const boost::asio::any_io_executor& executor, std::chrono::milliseconds quiet = kQuiet,
                         std::function<std::size_t()> free_bytes = {}, std::function<void()> trim = {});
  /// Something large left memory now: trim once lpd is quiet.
  void request();

 private:
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds quiet_;
  std::function<std::size_t()> free_bytes_;
  std::function<void()> trim_;
};

}  // namespace lpd::daemon
