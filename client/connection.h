#pragma once

#include <chrono>
#include <deque>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "protocol/line_reader.h"

namespace lpd::client {

using json = nlohmann::json;

/// Thrown when nothing answers on the socket (absent, refused, or silent past
/// the timeout). lpctl turns it into one line and exit code 2.
class DaemonUnreachable : public std::runtime_error {
 public:
  /// `nobody_there`: no socket, or nothing listening on it (ENOENT,
  /// ECONNREFUSED), as opposed to one that will not or cannot answer.
  /// `denied`: connect(2) said EACCES or EPERM: the socket is
  /// there, but its mode or its directory's keeps this user out.
  DaemonUnreachable(std::string socket_path, std::string why, bool nobody_there = false, bool denied = false)
      : std::runtime_error("no lpd answering on " + socket_path + " (" + why + ")"),
        socket_path_(std::move(socket_path)),
        why_(std::move(why)),
        nobody_there_(nobody_there),
        denied_(denied) {}
  const std::string& socket_path() const { return socket_path_; }
  const std::string& why() const { return why_; }
  bool nobody_there() const { return nobody_there_; }
  bool denied() const { return denied_; }

 private:
  std::string socket_path_;
  std::string why_;
  bool nobody_there_ = false;
  bool denied_ = false;
};

/// Connection is a blocking client for one daemon connection: it connects,
/// says hello and then sends requests and reads their replies in order.
/// Server pushes that arrive while a reply is awaited are kept for
/// next_push(). Every wait is a poll() on the socket with a deadline.
class Connection {
 public:
  using Clock = std::chrono::steady_clock;

  /// Connects and performs the hello handshake within `timeout`.
  static Connection open(const std::string& socket_path, std::chrono::milliseconds timeout,
                         std::string_view role = "cli");

  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&&) = delete;
  Connection(const Connection&) = delete;
  ~Connection();

  /// Sends a request and waits for its reply. Returns `result`, or throws
  /// protocol::Error with the daemon's code and message. `timeout` of zero
  /// means wait without limit (for operations that end on the daemon's own clock).
  json request(std::string_view op, json fields = json::object(),
               std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  /// Sends a notification: no reply comes back.
  void notify(std::string_view op, json fields = json::object());

  /// Waits for the next server push; nullopt on timeout. Throws
  /// DaemonUnreachable when the daemon closes the connection.
  std::optional<json> next_push(std::optional<std::chrono::milliseconds> timeout);

  const json& hello_result() const { return hello_; }
  const std::string& socket_path() const { return socket_path_; }
  int fd() const { return fd_; }

 private:
  Connection(int fd, std::string socket_path, std::chrono::milliseconds timeout);
  void send_line(const std::string& line);
  /// After a failed send: throws the daemon's connection-level error
  /// (`"id": null`) if one is already waiting to be read, else returns.
  void throw_connection_error_if_any();
  /// Reads until one whole message is available or the deadline passes.
  std::optional<json> read_message(std::optional<Clock::time_point> deadline);

  int fd_ = -1;
  std::string socket_path_;
  std::chrono::milliseconds timeout_;
  protocol::LineReader reader_;
  std::deque<json> pushes_;
  std::int64_t next_id_ = 1;
  json hello_;
};

/// How lpctl rides out an lpd restart while it follows or holds something
/// (`lpctl run`'s output, `lpctl ensure --lease`'s hold): after each
/// DaemonUnreachable, wait() says so on stderr once per outage and sleeps
/// 50 ms, doubling to 1 s, before the caller connects again; over() says
/// lpd is back (if it was gone) and resets the wait.
class DaemonOutage {
 public:
  /// Prints "lpctl: lost lpd (WHY); waiting for it to come back" + `then`
  /// the first time, then sleeps.
  void wait(const DaemonUnreachable& e, const std::string& then = "");
  /// Prints "lpctl: lpd is back; " + `doing` when lpd had been lost.
  void over(const std::string& doing);

 private:
  std::chrono::milliseconds backoff_{50};
  bool lost_ = false;
};

}  // namespace lpd::client
