#include "daemon/logs/line_splitter.h"

namespace lpd::daemon {

void LineSplitter::feed(std::string_view bytes, const OnLine& on_line) {
  while (!bytes.empty()) {
    const auto newline = bytes.find('\n');
    const std::string_view piece = bytes.substr(0, newline);
    const bool ends_line = newline != std::string_view::npos;
    const std::size_t consumed = piece.size() + (ends_line ? 1 : 0);
    bytes.remove_prefix(consumed);
    offset_ += consumed;

    if (skipping_) {
      if (ends_line) skipping_ = false;
      continue;
    }
    const std::size_t room = max_line_ - pending_.size();
    if (piece.size() > room) {
      // Over the limit: report the head now, drop the rest of this line.
      pending_.append(piece.substr(0, room));
      const std::uint64_t cut_at = offset_ - consumed + room;
      on_line(Line{pending_, cut_at, true});
      pending_.clear();
      skipping_ = !ends_line;
      continue;
    }
    if (!ends_line) {
      pending_.append(piece);
      continue;
    }
    if (pending_.empty()) {
      on_line(Line{piece, offset_, false});
    } else {
      pending_.append(piece);
      on_line(Line{pending_, offset_, false});
      pending_.clear();
    }
  }
}

void LineSplitter::flush(const OnLine& on_line) {
  if (pending_.empty()) return;
  on_line(Line{pending_, offset_, false});
  pending_.clear();
}

}  // namespace lpd::daemon
