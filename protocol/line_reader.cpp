#include "protocol/line_reader.h"

namespace lpd::protocol {

std::string LineReader::take_buffered() {
  std::string rest = discarding_ ? std::string() : pending_.substr(scan_from_);
  drop_all();
  discarding_ = false;
  return rest;
}

void LineReader::drop_all() {
  std::string().swap(pending_);  // clear() would keep up to a megabyte allocated
  scan_from_ = searched_ = 0;
}

void LineReader::release_spare() {
  if (pending_.capacity() <= kKeptCapacity) return;
  if (pending_.size() - scan_from_ > kKeptCapacity / 2) return;  // still in use: a long line arriving
  // A copy is allocated to its size; the old buffer goes with the swap.
  std::string kept(pending_, scan_from_);
  pending_.swap(kept);
  scan_from_ = 0;
}

LineReader::Next LineReader::next() {
  for (;;) {
    const std::size_t start = scan_from_ + searched_;
    const std::size_t nl = pending_.find('\n', start);
    if (nl == std::string::npos) {
      searched_ = pending_.size() - scan_from_;
      if (discarding_) {
        drop_all();
        return {Status::kNeedMore, {}};
      }
      if (searched_ > max_line_) {
        // Drop what we have and skip the rest of this line when it arrives.
        discarding_ = true;
        drop_all();
        return {Status::kOversized, {}};
      }
      // Compact once the consumed prefix dominates, keeping appends amortised O(1).
      if (scan_from_ > 0 && scan_from_ >= pending_.size() / 2) {
        pending_.erase(0, scan_from_);
        scan_from_ = 0;
      }
      release_spare();
      return {Status::kNeedMore, {}};
    }
    const std::size_t length = nl - scan_from_;
    const std::size_t line_start = scan_from_;
    scan_from_ = nl + 1;
    searched_ = 0;
    if (discarding_) {
      discarding_ = false;
      continue;
    }
    if (length > max_line_) return {Status::kOversized, {}};
    std::string line = pending_.substr(line_start, length);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return {Status::kLine, std::move(line)};
  }
}

}  // namespace lpd::protocol
