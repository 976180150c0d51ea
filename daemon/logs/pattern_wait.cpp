#include "daemon/logs/pattern_wait.h"

namespace lpd::daemon {

std::shared_ptr<PatternWait> PatternWait::start(boost::asio::io_context& io, const std::string& log_path,
                                                std::uint64_t offset, Pattern pattern, std::int64_t max_lines,
                                                Callbacks callbacks) {
  auto wait = std::make_shared<PatternWait>(std::move(pattern), max_lines, offset, std::move(callbacks));
  std::weak_ptr<PatternWait> weak = wait;
  wait->tail_ = LogTail::open(io, log_path, offset, [weak](std::string_view bytes, std::uint64_t) {
    if (auto self = weak.lock()) self->feed(bytes);
  });
  wait->tail_->follow();
  return wait;
}

PatternWait::PatternWait(Pattern pattern, std::int64_t max_lines, std::uint64_t offset, Callbacks callbacks)
    : pattern_(std::move(pattern)),
      max_lines_(max_lines),
      callbacks_(std::move(callbacks)),
      splitter_(kMaxLineBytes, offset) {}

void PatternWait::feed(std::string_view bytes) {
  splitter_.feed(bytes, [this](const LineSplitter::Line& line) { on_line(line); });
}

void PatternWait::on_line(const LineSplitter::Line& line) {
  if (decided_) return;
  std::string_view text = line.text;
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  bool matched = false;
  try {
    matched = pattern_.search(text, credit_);
  } catch (const PatternTooComplex& e) {
    // one give-up decides the wait, so a hostile helper costs
    // the daemon one budget, not one per line it prints.
    decided_ = true;
    if (callbacks_.on_too_complex) callbacks_.on_too_complex(e.what());
    return;
  }
  if (matched) {
    decided_ = true;
    if (callbacks_.on_match) callbacks_.on_match(std::string(text.substr(0, kKeptLineBytes)), line.end_offset);
    return;
  }
  if (text.find_first_not_of(" \t\r\f\v") != std::string_view::npos) ++lines_seen_;
  if (max_lines_ > 0 && lines_seen_ >= max_lines_) {
    decided_ = true;
    if (callbacks_.on_line_limit) callbacks_.on_line_limit();
  }
}

void PatternWait::finish(std::function<void()> done) {
  if (!tail_) {
    splitter_.flush([this](const LineSplitter::Line& line) { on_line(line); });
    done();
    return;
  }
  std::weak_ptr<PatternWait> weak = weak_from_this();
  tail_->finish([weak, done = std::move(done)] {
    if (auto self = weak.lock())
      self->splitter_.flush([&self](const LineSplitter::Line& line) { self->on_line(line); });
    done();
  });
}

void PatternWait::stop() {
  decided_ = true;
  if (tail_) tail_->stop();
}

std::uint64_t PatternWait::read_offset() const {
  // Decided (matched, out of lines, stopped): it reads nothing more, so it holds nothing back.
  return decided_ || !tail_ ? UINT64_MAX : tail_->offset();
}

}  // namespace lpd::daemon
