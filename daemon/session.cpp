#include "daemon/session.h"

#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

namespace lpd::daemon {

namespace asio = boost::asio;
using protocol::ErrorCode;

Session::Session(Socket socket, Peer peer, Dispatcher& dispatcher,
                 std::chrono::milliseconds hello_timeout, ClosedCallback on_closed)
    : socket_(std::move(socket)),
      peer_(std::move(peer)),
      dispatcher_(dispatcher),
      hello_timer_(socket_.get_executor()),
      hello_timeout_(hello_timeout),
      on_closed_(std::move(on_closed)) {}

void Session::start() {
  hello_timer_.expires_after(hello_timeout_);
  hello_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->peer_.said_hello || !self->open_) return;
    spdlog::info("session {}: no hello within {} ms, closing", self->peer_.session_id,
                 self->hello_timeout_.count());
    self->send(protocol::encode_reply_error(nullptr, ErrorCode::kTimeout,
                                            "no hello received in time; closing connection"));
    self->close_after_flush();
  });
  read_more();
}

void Session::read_more() {
  if (!open_ || closing_) return;
  socket_.async_read_some(asio::buffer(read_buffer_),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                            if (ec) {
                              if (ec != asio::error::eof && ec != asio::error::operation_aborted)
                                spdlog::debug("session {}: read: {}", self->peer_.session_id, ec.message());
                              self->close();
                              return;
                            }
                            self->handle_bytes(n);
                          });
}

bool Session::switch_to_raw(std::function<void(std::string_view)> on_bytes) {
  raw_ = std::move(on_bytes);
  return true;
}

void Session::handle_bytes(std::size_t n) {
  if (raw_) {
    raw_(std::string_view(read_buffer_.data(), n));
    read_more();
    return;
  }
  reader_.feed(std::string_view(read_buffer_.data(), n));
  auto self = shared_from_this();  // a handler may close us while we loop
  while (open_ && !closing_) {
    auto next = reader_.next();
    if (next.status == protocol::LineReader::Status::kNeedMore) break;
    if (next.status == protocol::LineReader::Status::kOversized) {
      spdlog::warn("session {}: line over {} bytes from pid {}, closing", peer_.session_id,
                   protocol::kMaxLineBytes, peer_.pid);
      send(protocol::encode_reply_error(
          nullptr, ErrorCode::kTooLarge,
          "line exceeds " + std::to_string(protocol::kMaxLineBytes) + " bytes; closing connection"));
      close_after_flush();
      return;
    }
    if (next.line.empty()) continue;  // blank lines are harmless keep-alives
    dispatcher_.dispatch_line(next.line, peer_, self);
    if (peer_.said_hello) hello_timer_.cancel();
    if (raw_) {
      // The rest of what was read already belongs to the raw stream.
      std::string rest = reader_.take_buffered();
      if (!rest.empty()) raw_(rest);
      break;
    }
  }
  read_more();
}

void Session::send(std::string line) {
  if (!open_) return;
  queued_bytes_ += line.size();
  if (queued_bytes_ > kMaxQueuedBytes) {
    spdlog::warn("session {}: peer pid {} is not reading ({} bytes queued), dropping it",
                 peer_.session_id, peer_.pid, queued_bytes_);
    close();
    return;
  }
  outgoing_.push_back(std::move(line));
  write_more();
}

void Session::write_more() {
  if (writing_ || !open_) return;
  if (outgoing_.empty()) {
    if (closing_) close();
    return;
  }
  writing_ = true;
  asio::async_write(socket_, asio::buffer(outgoing_.front()),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->writing_ = false;
                      if (!self->open_) return;  // close() already dropped the queue
                      if (ec) {
                        self->close();
                        return;
                      }
                      self->queued_bytes_ -= self->outgoing_.front().size();
                      self->outgoing_.pop_front();
                      self->write_more();
                    });
}

void Session::close_after_flush() {
  closing_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(Socket::shutdown_receive, ignored);
  write_more();
}

void Session::close() {
  if (!open_) return;
  open_ = false;
  hello_timer_.cancel();
  boost::system::error_code ignored;
  socket_.close(ignored);
  outgoing_.clear();
  queued_bytes_ = 0;
  if (on_closed_) on_closed_(*this);
}

}  // namespace lpd::daemon
