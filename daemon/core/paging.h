#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace lpd::daemon {

/// The bounds of one page of a list operation (events.list, run.list,
/// prune): a reply never nears the protocol's 1 MiB line limit, however
/// large the items, and a filtered scan never holds the event loop long.
struct PageLimits {
  static constexpr std::size_t kDefaultItems = 1000;
  static constexpr std::size_t kMaxItems = 10'000;
  /// Encoded items per reply: half the line limit, leaving room for the envelope.
  static constexpr std::size_t kMaxReplyBytes = 512 * 1024;
  /// Journal bytes one events.list call reads before it answers (with a
  /// cursor) even if its filter matched little.
  static constexpr std::size_t kMaxScanBytes = 4 * 1024 * 1024;

  /// The item count a caller asked for, within [1, kMaxItems]; absent:
  /// kDefaultItems. Throws protocol::Error bad_request below 1.
  static std::size_t items(std::optional<std::int64_t> requested);
};

/// PageBudget fills one page: take() says whether one more item of `bytes`
/// fits. The first item always fits, so a page always makes progress.
class PageBudget {
 public:
  PageBudget(std::size_t max_items, std::size_t max_bytes) : max_items_(max_items), max_bytes_(max_bytes) {}

  /// True (and counted) when the item fits; false once the page is full.
  bool take(std::size_t bytes) {
    if (full()) return false;
    if (items_ > 0 && bytes_ + bytes > max_bytes_) {
      refused_ = true;  // full: no smaller item may slip in after a refused one
      return false;
    }
    ++items_;
    bytes_ += bytes;
    return true;
  }
  bool full() const { return refused_ || items_ >= max_items_; }
  std::size_t items() const { return items_; }

 private:
  std::size_t max_items_;
  std::size_t max_bytes_;
  std::size_t items_ = 0;
  std::size_t bytes_ = 0;
  bool refused_ = false;
};

}  // namespace lpd::daemon
