#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace lpd::daemon {

/// BoundedTraceback keeps what a dying process wrote on its traceback
/// connection (faulthandler's dump, the native shim's crash line) within
/// kMaxBytes: its first kHeadBytes (where faulthandler names the fatal
/// error, "Fatal Python error: Segmentation fault") and its last bytes,
/// with a line saying how much was left out between them. Keeping only the
/// first 64 KiB dropped the end of a long dump, and faulthandler may write
/// the crashing thread ("Current thread ...") last, after every other one.
class BoundedTraceback {
 public:
  static constexpr std::size_t kMaxBytes = 64 * 1024;
  static constexpr std::size_t kHeadBytes = 16 * 1024;
  static constexpr std::size_t kTailBytes = kMaxBytes - kHeadBytes;

  /// Appends the next piece as it arrived (any size, any cut).
  void add(std::string_view text);
  /// All of it when it fit; else the head, a line "... lpd left out N
  /// bytes of this traceback here ...", and the tail from its first whole
  /// line (no piece of a UTF-8 character at either cut).
  std::string text() const;
  bool empty() const { return head_.empty(); }

 private:
  std::string head_;
  std::string tail_;  // the last bytes past the head, up to 2 * kTailBytes before it is trimmed
  std::size_t dropped_ = 0;  // bytes trimmed off the front of tail_
};

/// What to keep of `text`, which follows a cut (its start was left out):
/// its last `max_bytes` or less, from its first whole line when one starts
/// there, else past any UTF-8 continuation bytes: never half a line when
/// it can help it, never half a character. A view into `text`. Where a
/// traceback is cut to its end, which faulthandler writes last (the
/// crashing thread).
std::string_view traceback_end(std::string_view text, std::size_t max_bytes);

}  // namespace lpd::daemon
