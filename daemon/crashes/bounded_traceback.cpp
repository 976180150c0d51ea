#include "daemon/crashes/bounded_traceback.h"

#include <algorithm>

#include "protocol/utf8.h"

namespace lpd::daemon {

void BoundedTraceback::add(std::string_view text) {
  if (head_.size() < kHeadBytes) {
    const std::size_t room = kHeadBytes - head_.size();
    head_.append(text.substr(0, room));
    text.remove_prefix(std::min(room, text.size()));
  }
  if (text.empty()) return;
  tail_.append(text);
  // Trimmed in batches: one erase per kTailBytes added, not one per piece.
  if (tail_.size() > 2 * kTailBytes) {
    const std::size_t cut = tail_.size() - kTailBytes;
    tail_.erase(0, cut);
    dropped_ += cut;
  }
}

std::string BoundedTraceback::text() const {
  if (dropped_ == 0 && tail_.size() <= kTailBytes) return head_ + tail_;
  std::string_view head = head_;
  head.remove_suffix(protocol::utf8_cut_suffix(head));
  std::string_view tail = tail_;
  std::size_t left_out = dropped_ + (head_.size() - head.size());
  if (tail.size() > kTailBytes) {
    left_out += tail.size() - kTailBytes;
    tail.remove_prefix(tail.size() - kTailBytes);
  }
  // From the tail's first whole line, when there is one.
  if (const auto newline = tail.find('\n'); newline != std::string_view::npos && newline + 1 < tail.size()) {
    left_out += newline + 1;
    tail.remove_prefix(newline + 1);
  } else {
    while (!tail.empty() && (static_cast<unsigned char>(tail.front()) & 0xC0) == 0x80) {
      ++left_out;
      tail.remove_prefix(1);
    }
  }
  std::string out(head);
  if (!out.empty() && out.back() != '\n') out += '\n';
  out += "... lpd left out " + std::to_string(left_out) + " bytes of this traceback here ...\n";
  out += tail;
  return out;
}

}  // namespace lpd::daemon
