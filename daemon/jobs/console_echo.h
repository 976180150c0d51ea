#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "daemon/os/launcher.h"
#include "daemon/core/unique_fd.h"

namespace lpd::daemon {

/// ConsoleEcho writes a crashing process's traceback to that process's own
/// stderr too (the descriptor its shim passed with traceback.attach), so
/// the console shows "Fatal Python error ... File ..." at the moment of the
/// crash, as plain pytest would, and not only lpd's records.
///
/// The descriptor is the user's: a terminal that is stopped, a full pipe, a
/// FIFO nobody reads. lpd never writes to it itself: each batch of bytes is
/// written by a short-lived child that has become the run's user and is
/// killed by SIGALRM after kTimeout, and lpd learns of its end through a
/// pidfd, never by waiting. Bytes that arrive while a child writes go with
/// the next one, in order. Bounded: at most kMaxBytes in all.
class ConsoleEcho : public std::enable_shared_from_this<ConsoleEcho> {
 public:
  static constexpr unsigned kTimeoutSeconds = 2;
  static constexpr std::size_t kMaxBytes = 64 * 1024;

  /// nullptr unless `fd` is open for writing (O_WRONLY or O_RDWR). Takes it.
  static std::shared_ptr<ConsoleEcho> make(boost::asio::io_context& io, UniqueFd fd,
                                           std::optional<Credentials> who);

  ConsoleEcho(boost::asio::io_context& io, UniqueFd fd, std::optional<Credentials> who)
      : io_(io), fd_(std::move(fd)), who_(std::move(who)) {}

  /// Queues `bytes` and starts a writer unless one is at work.
  void write(std::string_view bytes);

 private:
  void start_writer();

  boost::asio::io_context& io_;
  UniqueFd fd_;
  std::optional<Credentials> who_;
  std::string pending_;
  std::size_t total_ = 0;
  bool writing_ = false;
  bool failed_ = false;  // a child could not be made: give up quietly
};

}  // namespace lpd::daemon
