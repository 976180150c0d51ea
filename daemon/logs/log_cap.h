#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/logs/log_cap_rules.h"

namespace lpd::daemon {

// the I/O edge of the helper log cap (the rules are in
// log_cap_rules.h).
//
// Why free the front of the file in place (fallocate PUNCH_HOLE) rather
// than pipe the helper's output through a small logger (s6-log style):
// - the helper keeps writing to a plain file with O_APPEND: a write never
//   blocks on, or fails because of, a logger that is slow, stopped or gone
//   (lpd may be killed and restarted while helpers run on);
// - the file keeps its size, so every offset lpd and the shim hold (ready
//   offsets, where a test's excerpt begins, a follower's position) still
//   means the same bytes; readers skip the freed front with SEEK_DATA;
// - nothing has to outlive lpd: a restarted lpd measures the logs again.
// Where the file system cannot punch holes (EOPNOTSUPP: vfat, NFSv3 ...),
// the log is emptied instead (truncated to 0, then one line says how much
// was dropped): less kept, but the disk stays bounded all the same.

/// A log as measured now; nullopt when it is missing or not a regular file
/// (never followed through a link). `head` is the start a cut keeps
/// (LogCaps::keep_head): kept_from is then the first data at or after it.
std::optional<LogUse> measure_log(const std::string& path, std::uint64_t head = 0);

/// What free_log_front did.
struct FrontFreed {
  bool truncated = false;   // the file system cannot punch: the file was emptied
  std::uint64_t bytes = 0;  // truncated: what the file held; else where the kept part begins now
};

/// Frees bytes [0, keep_from) of the log at `path` (fallocate
/// PUNCH_HOLE|KEEP_SIZE): the writer's O_APPEND offset and the file size do
/// not change. Throws std::system_error (a link, FIFO or device at `path`
/// is refused, never opened).
FrontFreed free_log_front(const std::string& path, std::uint64_t keep_from);

/// as free_log_front, but frees [from, keep_from) and keeps the
/// first `from` bytes (a run's first lines); from 0 is free_log_front.
/// Where holes cannot be punched the log is emptied all the same.
FrontFreed free_log_range(const std::string& path, std::uint64_t from, std::uint64_t keep_from);

/// the parts of a log a cut left: [0, head_end) the kept head,
/// [head_end, kept_from) freed, [kept_from, size) the kept newest output.
/// No hole: head_end == kept_from == size. Reads the file's holes
/// (SEEK_HOLE/SEEK_DATA, as `cp --sparse`), never its bytes.
struct LogParts {
  std::uint64_t size = 0;
  std::uint64_t head_end = 0;
  std::uint64_t kept_from = 0;
  std::uint64_t disk_bytes = 0;  // st_blocks * 512
  std::uint64_t dropped() const { return kept_from - head_end; }
};
/// nullopt when `path` cannot be read (missing, a link, not a regular file).
std::optional<LogParts> log_parts(const std::string& path);

/// (attack finding 6): gives back the space a helper reserved
/// past the end of its log (`fallocate --keep-size` on its own output):
/// the file is truncated to its own size, which frees the blocks beyond
/// it and changes no byte. Only for a log nobody writes any more (its
/// helper and every process of its tree ended): a concurrent append could
/// otherwise be cut. Returns the bytes freed (0 when nothing was reserved);
/// throws std::system_error (a link, FIFO or device is refused).
std::uint64_t release_reserved_past_end(const std::string& path);

/// The block size freeing works in for files under `dir` (4096 when it
/// cannot tell).
std::uint64_t log_block_size(const std::string& dir);

/// LogGrowthWatch (named HelperLogWatch before run outputs used
/// it too) tells which owners' live logs grew, without
/// polling: one inotify descriptor for all of them (IN_MODIFY), and at most
/// one wake-up per `window` however much the helpers write — after a
/// change it stops listening for `window`, then reports every owner whose
/// logs changed meanwhile (as LogTail coalesces for live output). While
/// logs keep changing it looks once per window on its timer alone; a
/// window without a change goes back to waiting on inotify. The kernel
/// merges a log's repeated events while nobody reads them.
class LogGrowthWatch {
 public:
  using OnGrown = std::function<void(uid_t owner)>;

  LogGrowthWatch(boost::asio::io_context& io, std::chrono::milliseconds window, OnGrown on_grown);
  ~LogGrowthWatch();
  LogGrowthWatch(const LogGrowthWatch&) = delete;
  LogGrowthWatch& operator=(const LogGrowthWatch&) = delete;

  /// Watches `path` (not followed if a link) for `owner`. False (and the
  /// reason logged by the caller) when inotify refuses (its watch limit).
  bool watch(const std::string& path, uid_t owner);
  /// Stops watching `path` (a helper ended).
  void unwatch(const std::string& path);
  /// (attack finding 7): the next window is a tenth as long (at
  /// least 5 ms), for when the last check found logs far over their cap:
  /// a log grows by what its helper writes in one window, so a helper
  /// writing at disk speed is looked at more often, a quiet one never.
  void hurry();

 private:
  void wait();
  /// The window after a change: report what grew when it ends.
  void open_window();
  /// Reads every pending inotify event into grown_; true when there was one.
  bool read_events();

  boost::asio::io_context& io_;
  std::chrono::milliseconds window_;
  OnGrown on_grown_;
  std::optional<boost::asio::posix::stream_descriptor> inotify_;
  boost::asio::steady_timer timer_;
  std::map<int, uid_t> owners_;           // watch descriptor -> owner
  std::map<std::string, int> watches_;    // path -> watch descriptor
  std::set<uid_t> grown_;                 // owners to report when the window ends
  bool waiting_ = false;
  bool window_open_ = false;
  bool hurried_ = false;  // the next window is short
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

/// The helper log cap's name for it.
using HelperLogWatch = LogGrowthWatch;

}  // namespace lpd::daemon
