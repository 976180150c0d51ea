#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/logs/log_cap.h"
#include "daemon/jobs/run_output_rules.h"

namespace lpd::daemon {

/// RunOutputCap keeps run outputs (runs/<id>/output.log)
/// within RunOutputLimits, with the helper log cap's machinery: the same
/// rules (plan_log_freeing), the same freeing in place (holes punched with
/// fallocate, so the command's O_APPEND writes and every reader's offsets
/// go on unchanged), the same growth watch (one inotify descriptor, at
/// most one look per window whatever the commands write). Nothing is on a
/// test's path: it wakes only when an output file grows, once per window.
///
/// A run being written is watched from its first attempt to its end, and
/// looked at at once when lpd (re)starts watching it, so an lpd killed and
/// restarted mid-run cuts what was written meanwhile before it serves
/// anyone. Ended runs' outputs count towards their owner's total; they are
/// measured once (at the end, or the first time the total is needed after
/// a restart) and not again until freed.
class RunOutputCap {
 public:
  /// What a cut left of one run's output, for run.output_dropped.
  struct Dropped {
    std::string run_id;
    OutputStream stream = OutputStream::kStdout;
    uid_t owner = 0;
    LogParts parts;
  };
  using OnDropped = std::function<void(const Dropped&)>;

  /// At most one OnDropped per run per this (the last change always follows).
  static constexpr std::chrono::milliseconds kNoteInterval{1000};
  /// How long the watch waits after a write before looking.
  static constexpr std::chrono::milliseconds kWindow{50};

  /// `runs_dir`: where the outputs are (for the file system's block size).
  RunOutputCap(boost::asio::io_context& io, RunOutputLimits limits, std::string runs_dir, OnDropped on_dropped);

  /// Run `run_id` of `owner` writes its `stream` output to `path` from now
  /// on; its owner's outputs are capped at once. Again for a later attempt:
  /// no-op. A run's two logs (stdout, stderr) are each capped at the
  /// per-run limit and both count towards its owner's total.
  void started(const std::string& run_id, uid_t owner, const std::string& path,
               OutputStream stream = OutputStream::kStdout);
  /// Its command and every attempt are over: one last look at each of its
  /// logs, then they only count towards its owner's total.
  void ended(const std::string& run_id);
  /// An ended run's `stream` log found at restore: measured when first
  /// needed (a log that does not exist counts as empty).
  void known(const std::string& run_id, uid_t owner, const std::string& path,
             OutputStream stream = OutputStream::kStdout);
  /// Runs removed (retention, a failed start): no longer counted.
  void forget(const std::set<std::string>& run_ids);

  const RunOutputLimits& limits() const { return limits_; }

 private:
  /// One log of one run, keyed by output_key (run id, stream).
  struct Output {
    std::string run_id;
    OutputStream stream = OutputStream::kStdout;
    uid_t owner = 0;
    std::string path;
    bool live = false;
    std::optional<LogUse> use;  // an ended output's, measured once and after each freeing
    bool noted_once = false;
    std::chrono::steady_clock::time_point last_note{};
    std::unique_ptr<boost::asio::steady_timer> note_timer;
  };

  bool unbounded() const { return limits_.per_run == 0 && limits_.per_owner == 0; }
  /// The key of a run's log in outputs_: the run id for stdout, the run id
  /// and "/stderr" for stderr (a run id never holds '/').
  static std::string output_key(const std::string& run_id, OutputStream stream);
  void end_output(const std::string& key);
  void enforce(uid_t owner);
  void note_dropped(const std::string& key);
  void send_note(const std::string& key);

  boost::asio::io_context& io_;
  RunOutputLimits limits_;
  std::string runs_dir_;
  OnDropped on_dropped_;
  std::uint64_t block_ = 0;  // found on first need
  /// One owner's outputs (by output_key): a look at a chatty run costs its
  /// owner's live runs, never a pass over its whole history (kept in ended_disk).
  struct Owned {
    std::set<std::string> live;
    std::set<std::string> ended;
    std::uint64_t ended_disk = 0;  // sum of the measured ended outputs' disk use
    bool unmeasured = false;       // some ended output has no use yet
  };

  std::map<std::string, Output> outputs_;
  std::map<uid_t, Owned> by_owner_;
  LogGrowthWatch watch_;
};

/// A run output's excerpt of at most `max_bytes` (a failed command's JUnit
/// <system-out>): its newest output from a line start, after an
/// excerpt_note line when it is not the whole output. Never reads what the
/// cap freed. nullopt when the log cannot be read (opened as untrusted).
std::optional<std::string> run_output_excerpt(const std::string& path, std::size_t max_bytes);

}  // namespace lpd::daemon
