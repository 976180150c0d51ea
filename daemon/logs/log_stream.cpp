#include "daemon/logs/log_stream.h"

#include "protocol/message.h"

namespace lpd::daemon {

std::size_t complete_utf8_prefix(std::string_view bytes) {
  // Look back at most 3 bytes for the lead byte of the last character.
  const std::size_t n = bytes.size();
  for (std::size_t back = 1; back <= 4 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(bytes[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    std::size_t length = 1;
    if ((c & 0xE0) == 0xC0) length = 2;
    else if ((c & 0xF0) == 0xE0) length = 3;
    else if ((c & 0xF8) == 0xF0) length = 4;
    return length > back ? n - back : n;
  }
  return n;
}

std::shared_ptr<LogStream> LogStream::open(boost::asio::io_context& io, std::string name, const std::string& path,
                                           std::uint64_t offset, std::weak_ptr<ReplySink> sink, EndData end_data) {
  auto stream = std::make_shared<LogStream>(std::move(name), std::move(sink), std::move(end_data));
  stream->offset_ = offset;
  std::weak_ptr<LogStream> weak = stream;
  stream->tail_ = LogTail::open(io, path, offset, [weak](std::string_view bytes, std::uint64_t end_offset) {
    if (auto self = weak.lock()) self->send_piece(bytes, end_offset);
  });
  stream->tail_->set_throttle([sink = stream->sink_](std::function<void()> resume) {
    return may_send_now(sink, std::move(resume));
  });
  return stream;
}

void LogStream::read_until(std::uint64_t until) {
  tail_->finish([self = shared_from_this()] { self->send_end(); }, until);
}

void LogStream::follow() { tail_->follow(); }

void LogStream::end() {
  if (ended_) return;
  tail_->finish([self = shared_from_this()] { self->send_end(); });
}

void LogStream::cancel() {
  ended_ = true;
  tail_->stop();
  slot_.reset();
}

void LogStream::send_piece(std::string_view bytes, std::uint64_t end_offset) {
  auto sink = sink_.lock();
  if (!sink || !sink->open()) {
    cancel();
    return;
  }
  std::string data = std::move(carry_);
  carry_.clear();
  data.append(bytes);
  const std::size_t keep = complete_utf8_prefix(data);
  carry_ = data.substr(keep);
  data.resize(keep);
  offset_ = end_offset - carry_.size();
  if (data.empty()) return;
  sink->send(protocol::encode_push("proc.log", {{"name", name_}, {"data", data}, {"offset", offset_}}));
}

void LogStream::send_end() {
  if (ended_) return;
  ended_ = true;
  slot_.reset();
  auto sink = sink_.lock();
  if (!sink) return;
  if (!carry_.empty()) {
    offset_ += carry_.size();
    sink->send(protocol::encode_push("proc.log", {{"name", name_}, {"data", carry_}, {"offset", offset_}}));
    carry_.clear();
  }
  nlohmann::json data = end_data_ ? end_data_() : nlohmann::json::object();
  data["name"] = name_;
  data["offset"] = offset_;
  sink->send(protocol::encode_push("proc.log_end", data));
}

}  // namespace lpd::daemon
