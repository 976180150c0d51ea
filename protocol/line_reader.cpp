#include "protocol/line_reader.h"

namespace lpd::protocol {

std::string LineReader::take_buffered() {
  std::string rest = discarding_ ? std::string() : pending_.substr(scan_from_);
  pending_.clear();
  scan_from_ = searched_ = 0;
  discarding_ = false;
  return rest;
}

LineReader::Next LineReader::next() {
  for (;;) {
    const std::size_t start = scan_from_ + searched_;
    const std::size_t nl = pending_.find('\n', start);
    if (nl == std::string::npos) {
      searched_ = pending_.size() - scan_from_;
      if (discarding_) {
        pending_.clear();
        scan_from_ = searched_ = 0;
        return {Status::kNeedMore, {}};
      }
      if (searched_ > max_line_) {
        // Drop what we have and skip the rest of this line when it arrives.
        discarding_ = true;
        pending_.clear();
        scan_from_ = searched_ = 0;
        return {Status::kOversized, {}};
      }
      // Compact once the consumed prefix dominates, keeping appends amortised O(1).
      if (scan_from_ > 0 && scan_from_ >= pending_.size() / 2) {
        pending_.erase(0, scan_from_);
        scan_from_ = 0;
      }
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
