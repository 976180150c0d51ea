#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/core/unique_fd.h"

namespace lpd::daemon {

/// LogTail reads a file that another process appends to, from a byte
/// offset on, and hands each new piece to a callback. It wakes on inotify
/// (IN_MODIFY) rather than polling, and reads at most a bounded amount per
/// turn of the event loop so a burst of output does not stall other peers.
/// It holds the file open, so it keeps reading the same file after the
/// log is rotated away by a restart.
class LogTail : public std::enable_shared_from_this<LogTail> {
 public:
  using OnChunk = std::function<void(std::string_view bytes, std::uint64_t end_offset)>;
  /// Asked before each piece is read: true to go on now; false when the
  /// reader's queue is full, and then the throttle calls `resume` once it
  /// drained (see may_send_now in daemon/transport/dispatcher.h). A slow reader
  /// thus slows the reading instead of growing lpd.
  using Throttle = std::function<bool(std::function<void()> resume)>;

  /// Throws std::system_error when the file cannot be opened or watched.
  static std::shared_ptr<LogTail> open(boost::asio::io_context& io, const std::string& path,
                                       std::uint64_t offset, OnChunk on_chunk);
  ~LogTail();

  /// Reads what is there and keeps reading as the file grows, until stop().
  void follow();
  /// Reads up to the end of the file (or up to offset `until`, whichever
  /// comes first), then calls `done` once and stops. Used when the writer
  /// has exited, so its last lines are seen before its exit is reported,
  /// and to read a log once without following it.
  void finish(std::function<void()> done, std::uint64_t until = UINT64_MAX);
  /// No callback runs after this.
  void stop();
  /// Paces every later read by `throttle`.
  void set_throttle(Throttle throttle) { throttle_ = std::move(throttle); }
  /// After a change wakes it, waits `window` before reading, so a writer
  /// that flushes many tiny pieces (pytest's progress dots, one write per
  /// test) costs one wake-up and one read per window, not one per write.
  /// For live output shown to a person; 0 (the default) reads at once, as
  /// a helper's ready line must be seen (ensure). While every window finds
  /// new bytes the next read is simply a window later (one wake-up per
  /// window, not two); a window that finds none goes back to waiting for
  /// a change.
  void set_coalescing(std::chrono::milliseconds window) { coalescing_ = window; }
  /// Hands on no piece that ends inside a UTF-8 sequence while more may
  /// follow: the cut-off start (1 to 3 bytes) is read again with the next
  /// piece. For output pushed as JSON strings, where each half of a split
  /// character became U+FFFD (a piece of only such bytes goes as it is).
  void set_whole_utf8(bool whole) { whole_utf8_ = whole; }

  std::uint64_t offset() const { return offset_; }

  /// Takes over both descriptors (use open()).
  LogTail(boost::asio::io_context& io, UniqueFd file_fd, UniqueFd inotify_fd, std::uint64_t offset, OnChunk on_chunk);

 private:
  void schedule_read();
  void read_some();
  void wait_for_change();
  void changed();
  /// Reads the queued inotify events away (non-blocking).
  void discard_changes();
  /// Reads again once the coalescing window has passed.
  void start_window();

  boost::asio::io_context& io_;
  UniqueFd file_fd_;
  boost::asio::posix::stream_descriptor inotify_;
  std::uint64_t offset_;
  bool reached_;  // the file was seen at least offset_ long: shorter now means truncated
  OnChunk on_chunk_;
  Throttle throttle_;
  std::function<void()> on_finished_;
  std::uint64_t until_ = UINT64_MAX;
  bool stopped_ = false;
  bool read_scheduled_ = false;
  bool waiting_ = false;
  bool whole_utf8_ = false;
  std::chrono::milliseconds coalescing_{0};
  std::unique_ptr<boost::asio::steady_timer> coalesce_timer_;  // armed while a window runs
};

}  // namespace lpd::daemon
