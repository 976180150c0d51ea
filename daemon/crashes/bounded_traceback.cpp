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

std::string_view traceback_end(std::string_view text, std::size_t max_bytes) {
  if (text.size() > max_bytes) text.remove_prefix(text.size() - max_bytes);
  // From the first whole line, when there is one.
  if (const auto newline = text.find('\n'); newline != std::string_view::npos && newline + 1 < text.size()) {
    text.remove_prefix(newline + 1);
  } else {
    while (!text.empty() && (static_cast<unsigned char>(text.front()) & 0xC0) == 0x80) text.remove_prefix(1);
  }
  return text;
}

std::string BoundedTraceback::text() const {
  if (dropped_ == 0 && tail_.size() <= kTailBytes) return head_ + tail_;
  std::string_view head = head_;
  head.remove_suffix(protocol::utf8_cut_suffix(head));
  const std::string_view tail = traceback_end(tail_, kTailBytes);
  const std::size_t left_out = dropped_ + (head_.size() - head.size()) + (tail_.size() - tail.size());
  std::string out(head);
  if (!out.empty() && out.back() != '\n') out += '\n';
  out += "... lpd left out " + std::to_string(left_out) + " bytes of this traceback here ...\n";
  out += tail;
  return out;
}

}  // namespace lpd::daemon
