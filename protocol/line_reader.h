#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/limits.h"

namespace lpd::protocol {

/// LineReader turns a byte stream into complete lines with a hard bound on
/// memory. Bytes are fed as they arrive; whole lines come out without their
/// newline. A line that grows past the limit is reported once as oversized
/// and its bytes are discarded up to the next newline, so a peer streaming
/// an endless line costs at most `max_line` bytes. Memory follows use: a
/// buffer a big line grew is given back once the line is consumed, so an
/// idle reader holds at most kKeptCapacity bytes.
class LineReader {
 public:
  /// Capacity a reader may keep while it waits for more bytes; past it, and
  /// with less than half of it still unconsumed, the buffer is reallocated
  /// to what it holds.
  static constexpr std::size_t kKeptCapacity = 4096;

  explicit LineReader(std::size_t max_line = kMaxLineBytes) : max_line_(max_line) {}

  void feed(std::string_view bytes) { pending_.append(bytes); }

  enum class Status { kLine, kNeedMore, kOversized };
  struct Next {
    Status status;
    std::string line;  // set for kLine
  };

  /// Returns the next complete line, kNeedMore when none is buffered, or
  /// kOversized (once per oversized line) when the current line broke the limit.
  Next next();

  /// Removes and returns every byte not yet returned as a line (for a
  /// connection that switches from lines to a raw stream).
  std::string take_buffered();

  /// Bytes of an incomplete line kept so far (0 while discarding an oversized one).
  std::size_t buffered() const { return pending_.size() - scan_from_; }
  /// Bytes the reader's buffer holds allocated (for tests of the above).
  std::size_t capacity() const { return pending_.capacity(); }

 private:
  /// Frees everything, capacity included (an oversized line is dropped).
  void drop_all();
  /// Gives back the capacity a big line left behind (see kKeptCapacity).
  void release_spare();

  std::size_t max_line_;
  std::string pending_;
  std::size_t scan_from_ = 0;   // bytes already consumed at the front of pending_
  std::size_t searched_ = 0;    // bytes after scan_from_ known to hold no newline
  bool discarding_ = false;
};

}  // namespace lpd::protocol
