#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "daemon/logs/line_splitter.h"
#include "daemon/logs/log_tail.h"
#include "daemon/logs/pattern.h"

namespace lpd::daemon {

/// PatternWait watches a freshly started helper's log for its readiness
/// line: it tails the file (inotify), splits lines with a bounded buffer,
/// and searches each with the pattern. It reports a match once, or that the
/// line budget ran out, or that the pattern proved too complex for a line.
/// (A failure shows the log's last lines read from the file itself:
/// ProcessService::last_lines_of.)
class PatternWait : public std::enable_shared_from_this<PatternWait> {
 public:
  static constexpr std::size_t kMaxLineBytes = 64 * 1024;
  static constexpr std::size_t kKeptLineBytes = 1000;  // of the matched line, so replies stay small

  struct Callbacks {
    std::function<void(const std::string& line, std::uint64_t end_offset)> on_match;
    std::function<void()> on_line_limit;
    /// a line's search ran past its budget (PatternTooComplex's
    /// text); no further line is searched.
    std::function<void(const std::string& why)> on_too_complex;
  };

  /// `max_lines` counts non-empty lines, as pytest-xprocess does; 0 is no limit.
  /// Throws std::system_error when the log cannot be opened.
  static std::shared_ptr<PatternWait> start(boost::asio::io_context& io, const std::string& log_path,
                                            std::uint64_t offset, Pattern pattern, std::int64_t max_lines,
                                            Callbacks callbacks);

  PatternWait(Pattern pattern, std::int64_t max_lines, std::uint64_t offset, Callbacks callbacks);

  /// Reads what the (now exited) writer left, including an unterminated
  /// last line, so a match or the final words are not lost; then `done`.
  void finish(std::function<void()> done);
  void stop();

  /// how far the log was read; the size cap frees nothing
  /// beyond it while the wait runs, so the ready line is never freed
  /// unread. UINT64_MAX once the wait is decided or stopped.
  std::uint64_t read_offset() const;

  /// Feeds bytes directly (what the tail delivers); public for tests.
  void feed(std::string_view bytes);

 private:
  void on_line(const LineSplitter::Line& line);

  Pattern pattern_;
  SearchCredit credit_;  // what searching this log may cost
  std::int64_t max_lines_;
  Callbacks callbacks_;
  LineSplitter splitter_;
  std::shared_ptr<LogTail> tail_;
  std::int64_t lines_seen_ = 0;
  bool decided_ = false;  // matched or out of lines: nothing more to report
};

}  // namespace lpd::daemon
