#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "daemon/core/operation.h"
#include "daemon/logs/log_tail.h"

namespace lpd::daemon {

/// LogStream sends one helper's log to one peer as pushes, for `proc.logs`:
/// `proc.log` {name, data, offset} per piece and one `proc.log_end` at the
/// end. Pieces are cut at UTF-8 character boundaries so JSON never has to
/// mangle a character split between two reads. It reads no faster than the
/// peer takes the pieces (LogTail::Throttle on the peer's queue).
class LogStream : public std::enable_shared_from_this<LogStream> {
 public:
  using EndData = std::function<nlohmann::json()>;

  /// Throws std::system_error when the log cannot be opened.
  static std::shared_ptr<LogStream> open(boost::asio::io_context& io, std::string name, const std::string& path,
                                         std::uint64_t offset, std::weak_ptr<ReplySink> sink, EndData end_data);

  LogStream(std::string name, std::weak_ptr<ReplySink> sink, EndData end_data)
      : name_(std::move(name)), sink_(std::move(sink)), end_data_(std::move(end_data)) {}

  /// Sends what is there up to `until`, then the end.
  void read_until(std::uint64_t until);
  /// Sends what is there and whatever is appended, until end().
  void follow();
  /// The process ended: send the rest of the file, then the end.
  void end();
  /// The peer left: stop without sending anything more.
  void cancel();
  /// Holds the connection's stream slot until the stream ends.
  void hold(ReplySink::StreamSlot slot) { slot_ = std::move(slot); }

  bool ended() const { return ended_; }
  const std::string& name() const { return name_; }

 private:
  void send_piece(std::string_view bytes, std::uint64_t end_offset);
  void send_end();

  std::string name_;
  std::weak_ptr<ReplySink> sink_;
  EndData end_data_;
  std::shared_ptr<LogTail> tail_;
  ReplySink::StreamSlot slot_;
  std::string carry_;  // an incomplete UTF-8 sequence held for the next piece
  std::uint64_t offset_ = 0;
  bool ended_ = false;
};

/// Length of the longest prefix of `bytes` that does not end inside a
/// UTF-8 multi-byte sequence (invalid bytes count as complete).
std::size_t complete_utf8_prefix(std::string_view bytes);

}  // namespace lpd::daemon
