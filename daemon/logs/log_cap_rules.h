#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lpd::daemon {

/// the caps plan_log_freeing applies, whatever the logs hold:
/// helper logs (HelperLogLimits::caps) and run outputs (run_output_caps in
/// daemon/jobs/run_output_cap.h) share these rules.
struct LogCaps {
  std::uint64_t per_log = 0;    // disk use of one log; 0 = no limit
  std::uint64_t per_owner = 0;  // disk use of all of an owner's logs; 0 = no limit
  /// Bytes at the start of a log that a cut keeps: what is freed is then
  /// [keep_head, keep_from), a hole in the middle. 0 for helper logs (their
  /// front goes); a run's output keeps its first lines (pytest's collection
  /// errors are there). A multiple of the block size.
  std::uint64_t keep_head = 0;
};

/// How much of the state directory helper logs may take (`lpd start
/// --helper-log-max`, `--helper-logs-per-user-max`, `--helpers-per-user-max`).
/// A helper writes its log itself, straight into lpd's state directory: on a
/// shared host one user's chatty (or hostile) helper would otherwise fill
/// the disk, and then every user's start fails with `unavailable`.
struct HelperLogLimits {
  static constexpr std::uint64_t kDefaultPerLog = 64ull * 1024 * 1024;
  static constexpr std::uint64_t kDefaultPerOwner = 256ull * 1024 * 1024;
  static constexpr std::size_t kDefaultHelpersPerOwner = 128;
  /// Below this a cap would free a block at a time and keep almost nothing.
  static constexpr std::uint64_t kMinBytes = 64 * 1024;

  std::uint64_t per_log = kDefaultPerLog;      // disk use of one log; 0 = no limit
  std::uint64_t per_owner = kDefaultPerOwner;  // disk use of all of a uid's logs, kept ones too; 0 = no limit
  /// Records (running or ended) one non-root uid may have; ended ones are
  /// forgotten, oldest first, to make room. 0 = no limit.
  std::size_t helpers_per_owner = kDefaultHelpersPerOwner;

  /// the caps plan_log_freeing applies to helper logs (no head kept).
  LogCaps caps() const { return {per_log, per_owner, 0}; }
};

/// One helper log as the cap sees it.
struct LogUse {
  std::string path;
  std::uint64_t disk_bytes = 0;  // allocated (st_blocks * 512): what fills the disk
  std::uint64_t size = 0;        // st_size: freeing the front keeps it, so offsets stay valid
  std::uint64_t kept_from = 0;   // first byte not freed yet at or after the kept head (SEEK_DATA)
  std::int64_t written_at = 0;   // mtime in ns: the least recently written goes first
  bool live = false;             // a running helper appends to it
  bool current = false;          // a record's log_path: `lpctl logs` names it, so it stays (emptied)
  /// Nothing from here on may be freed yet: the start of what a helper's
  /// pattern wait has not read (its ready line may be there).
  std::uint64_t free_limit = UINT64_MAX;
};

/// What to free in one log.
struct LogFreeing {
  enum class How {
    kDropFront,  // free bytes [0, keep_from): the newest output stays, offsets stay valid
    kRemove,     // unlink the whole file (a kept log of an earlier start)
  };
  How how = How::kDropFront;
  std::string path;
  std::uint64_t keep_from = 0;  // kDropFront: a multiple of the block size (or the size rounded up: all of it)
  /// kDropFront frees [from, keep_from): the kept head ends at
  /// `from` (0 for helper logs, and for an ended log emptied whole).
  std::uint64_t from = 0;
};

/// What to free among one owner's logs so that they fit `limits`. Rules:
/// 1. a log above per_log loses its oldest part, down to half the cap (so
///    a chatty helper costs one freeing per half-cap written, not one per
///    write);
/// 2. then, while the owner's total is above per_owner, logs no helper
///    writes any more go whole, least recently written first (a current
///    log is emptied rather than removed, so it can still be named);
/// 3. then, if the live logs alone are above per_owner, each live log above
///    an equal share of half of per_owner is cut to that share.
/// Freeing works in whole blocks of `block` bytes (a power of two). Logs
/// already within the limits get nothing; the result lists each path once.
/// a cut by rule 1 or 3 keeps the first `caps.keep_head` bytes too
/// (at most the share rule 3 leaves a log, halved); rule 2 frees all.
std::vector<LogFreeing> plan_log_freeing(const std::vector<LogUse>& logs, const LogCaps& caps, std::uint64_t block);
/// The helper logs' caps (HelperLogLimits::caps).
inline std::vector<LogFreeing> plan_log_freeing(const std::vector<LogUse>& logs, const HelperLogLimits& limits,
                                                std::uint64_t block) {
  return plan_log_freeing(logs, limits.caps(), block);
}

/// One of an owner's helper records, for make_room_for_helper.
struct HelperAge {
  bool running = false;
  double ended_at = 0;  // wall-clock seconds; for ended ones
};

/// Whether an owner may add one more helper record under `max` (0: no
/// limit): `refused` when its running helpers alone fill it; otherwise
/// `forget` lists (by index into `helpers`) the ended records to drop
/// first, oldest end first, so that one more fits.
struct HelperRoom {
  bool refused = false;
  std::vector<std::size_t> forget;
};
HelperRoom make_room_for_helper(const std::vector<HelperAge>& helpers, std::size_t max);

/// The log's dropped byte count after a freeing. Freeing the front keeps
/// offsets, so the count is where the kept part begins; a file system that
/// cannot free part of a file is emptied instead (truncated), and then the
/// count grows by what the file held.
std::uint64_t dropped_after(std::uint64_t dropped_before, bool truncated, std::uint64_t front_or_size);

}  // namespace lpd::daemon
