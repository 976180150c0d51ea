#pragma once

#include <cstddef>

#include <boost/asio/any_io_executor.hpp>

namespace lpd::daemon {

/// Freed heap lpd keeps for reuse (bytes) rather than handing back to the
/// kernel: what one run of about 10,000 tests takes (its results, its
/// collected nodeids, its JUnit). Every page handed back is a page fault
/// when the next run takes it again, and a fault cost 13-15 µs on the
/// 2-core CI VM (bench/README, stop 38): 3,300 of them per 10,000-test run,
/// a quarter of lpd's CPU per test.
inline constexpr std::size_t kKeptFreeHeapBytes = std::size_t{16} << 20;

/// Sets glibc's malloc to keep up to kKeptFreeHeapBytes free at the top of
/// the heap (M_TRIM_THRESHOLD) and to take blocks up to that size from the
/// heap (M_MMAP_THRESHOLD), not from mmap, which hands every block back
/// when it is freed. Larger blocks (a 50,000-test run's results) are still
/// mapped and unmapped on their own. Call once, before the daemon's loop.
void keep_freed_heap_for_reuse();

/// Hands heap pages lpd freed back to the kernel (malloc_trim), once the
/// current turn of `executor`'s loop has let go of them, when more than
/// kKeptFreeHeapBytes are free (glibc's mallinfo2): a flood of connections,
/// or a large run whose results left memory, then does not leave lpd tens
/// of MB larger for good, while one run's worth stays for the next. Calls
/// in one turn cost one check.
void trim_heap_soon(const boost::asio::any_io_executor& executor);

}  // namespace lpd::daemon
