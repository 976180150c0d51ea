#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace lpd::daemon {

/// LineSplitter cuts a log's bytes into lines with a hard bound on memory,
/// and knows the byte offset in the file just after each line. A line that
/// grows past `max_line` is reported once, cut to its first `max_line`
/// bytes and marked truncated, the moment it reaches the limit (so its head
/// can still match a pattern); the rest of it up to the newline is skipped.
/// A 10 MB line without a newline therefore costs `max_line` bytes.
class LineSplitter {
 public:
  struct Line {
    std::string_view text;     // without the newline (or the cut head)
    std::uint64_t end_offset;  // file offset just after this line's newline (or after the cut)
    bool truncated;
  };
  using OnLine = std::function<void(const Line&)>;

  explicit LineSplitter(std::size_t max_line, std::uint64_t start_offset = 0)
      : max_line_(max_line), offset_(start_offset) {}

  /// Feeds bytes as they come from the file; calls `on_line` per line.
  void feed(std::string_view bytes, const OnLine& on_line);
  /// Reports the unterminated tail, if any, as a last line (when the
  /// writer is gone and no newline will ever come).
  void flush(const OnLine& on_line);

  std::uint64_t offset() const { return offset_; }
  std::size_t buffered() const { return pending_.size(); }

 private:
  std::size_t max_line_;
  std::uint64_t offset_;  // bytes consumed so far, as a file offset
  std::string pending_;   // the current line's head, never above max_line_
  bool skipping_ = false; // inside an over-long line that was already reported
};

}  // namespace lpd::daemon
