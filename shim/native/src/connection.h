#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "protocol/line_reader.h"

namespace lpd::shim {

/// Unavailable means the daemon cannot be reached or the connection broke;
/// the shim then drops the connection and may reconnect later.
class Unavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Connection is one blocking Unix-socket connection to lpd: whole lines out,
/// replies matched by id in. No event loop and no Asio: a test process makes
/// one call at a time (the shim's lock sees to that) and waits for it.
class Connection {
 public:
  using Clock = std::chrono::steady_clock;

  /// Connects (close-on-exec); throws Unavailable naming the path.
  explicit Connection(const std::string& path);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_; }

  /// Sends one whole line; throws Unavailable if the daemon is gone.
  void send_line(std::string_view line);

  /// Waits for the reply whose id is `id` and returns its body. Pushes,
  /// replies to other ids and id-less error replies (to a notification the
  /// daemon refused) are skipped. Throws Unavailable on a closed connection,
  /// protocol::Error(kTimeout) when the deadline passes.
  nlohmann::json wait_reply(std::int64_t id, std::optional<Clock::time_point> deadline);

  /// Reads and drops whatever the daemon sent that nobody waits for (error
  /// replies to notifications), without blocking, so they cannot pile up.
  void drain();

 private:
  /// Reads what is available within the deadline into reader_. Returns false on timeout.
  bool fill(std::optional<Clock::time_point> deadline);

  std::string path_;
  int fd_ = -1;
  protocol::LineReader reader_;
};

}  // namespace lpd::shim
