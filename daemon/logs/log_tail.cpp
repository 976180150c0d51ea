#include "daemon/logs/log_tail.h"

#include "protocol/utf8.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <system_error>

#include <boost/asio/post.hpp>

#include "daemon/logs/log_file.h"  // next_data_offset
#include "daemon/core/untrusted_file.h"

namespace lpd::daemon {
namespace {

constexpr std::size_t kChunkBytes = 64 * 1024;
/// Bytes read per turn of the event loop before yielding to other work.
constexpr std::size_t kBytesPerTurn = 1024 * 1024;

/// the size of the open file (0 when fstat fails).
std::uint64_t file_size_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

}  // namespace

std::shared_ptr<LogTail> LogTail::open(boost::asio::io_context& io, const std::string& path, std::uint64_t offset,
                                       OnChunk on_chunk) {
  // A log lives where its process's user may write: never follow a link
  // planted there, never block on a FIFO (open_untrusted).
  UniqueFd file_fd = open_untrusted(path);
  UniqueFd inotify_fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify_fd) throw std::system_error(errno, std::generic_category(), "inotify_init1");
  // The watch exists before the first read, so no write can slip between
  // "read to the end" and "wait for more".
  if (::inotify_add_watch(inotify_fd.get(), path.c_str(), IN_MODIFY | IN_DONT_FOLLOW) < 0)
    throw std::system_error(errno, std::generic_category(), "cannot watch " + path);
  return std::make_shared<LogTail>(io, std::move(file_fd), std::move(inotify_fd), offset, std::move(on_chunk));
}

LogTail::LogTail(boost::asio::io_context& io, UniqueFd file_fd, UniqueFd inotify_fd, std::uint64_t offset,
                 OnChunk on_chunk)
    : io_(io),
      file_fd_(std::move(file_fd)),
      inotify_(io, inotify_fd.release()),
      offset_(offset),
      reached_(offset == 0),
      on_chunk_(std::move(on_chunk)) {}

LogTail::~LogTail() = default;

void LogTail::follow() { schedule_read(); }

void LogTail::finish(std::function<void()> done, std::uint64_t until) {
  if (stopped_) {
    boost::asio::post(io_, std::move(done));
    return;
  }
  on_finished_ = std::move(done);
  until_ = until;
  schedule_read();
}

void LogTail::stop() {
  // on_chunk_ stays: stop() may be called from inside it, and stopped_
  // keeps it from running again. on_finished_ may own our owner: drop it.
  stopped_ = true;
  on_finished_ = nullptr;
  throttle_ = nullptr;
  boost::system::error_code ignored;
  inotify_.cancel(ignored);
  if (coalesce_timer_) coalesce_timer_->cancel();
}

void LogTail::schedule_read() {
  if (stopped_ || read_scheduled_) return;
  read_scheduled_ = true;
  boost::asio::post(io_, [self = shared_from_this()] {
    self->read_scheduled_ = false;
    self->read_some();
  });
}

void LogTail::read_some() {
  if (stopped_) return;
  std::array<char, kChunkBytes> buffer;
  std::size_t this_turn = 0;
  while (this_turn < kBytesPerTurn) {
    if (throttle_ && !throttle_([weak = weak_from_this()] {
          if (auto self = weak.lock()) self->schedule_read();
        }))
      return;  // the reader is behind: read on once it caught up
    // the size cap may have freed the front of the log (a hole,
    // read as zeros no helper wrote): go on from the first kept byte.
    offset_ = next_data_offset(file_fd_.get(), offset_);
    std::uint64_t wanted = std::min<std::uint64_t>(buffer.size(), until_ > offset_ ? until_ - offset_ : 0);
    // a run's output keeps its head and frees its middle: a read
    // ends where the data does (SEEK_HOLE), never reading the hole's zeros.
    if (const off_t hole = ::lseek(file_fd_.get(), static_cast<off_t>(offset_), SEEK_HOLE);
        hole > static_cast<off_t>(offset_))
      wanted = std::min<std::uint64_t>(wanted, static_cast<std::uint64_t>(hole) - offset_);
    ssize_t n = 0;
    if (wanted > 0) n = ::pread(file_fd_.get(), buffer.data(), wanted, static_cast<off_t>(offset_));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 && wanted > 0) {
      if (file_size_of(file_fd_.get()) < offset_) {
        // emptied by the cap where holes cannot be punched
        // (`tail -F` says "file truncated"): read it again from the start.
        // Not before the file reached offset_: then it is only not written
        // that far yet (an attach from past the end waits for it).
        if (reached_) {
          offset_ = 0;
          continue;
        }
      } else {
        reached_ = true;
      }
    }
    if (n > 0) reached_ = true;
    if (n <= 0) {
      // At the end of what the writer wrote so far.
      if (on_finished_) {
        auto done = std::move(on_finished_);
        on_finished_ = nullptr;
        stop();
        done();
        return;
      }
      if (coalescing_.count() > 0 && this_turn > 0) {
        // output is flowing (a test suite's progress): read again
        // after one window instead of waking on the next write and then
        // waiting out a window, which was two wake-ups per window. A window
        // that finds nothing goes back to waiting for a change.
        discard_changes();
        start_window();
        return;
      }
      wait_for_change();
      return;
    }
    if (whole_utf8_) {
      // Only a piece with more than the cut-off start is shortened, so a
      // reader at the writer's end never waits on bytes that may not come.
      const std::size_t held = protocol::utf8_cut_suffix(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
      if (held < static_cast<std::size_t>(n)) n -= static_cast<ssize_t>(held);
    }
    offset_ += static_cast<std::uint64_t>(n);
    this_turn += static_cast<std::size_t>(n);
    if (on_chunk_) on_chunk_(std::string_view(buffer.data(), static_cast<std::size_t>(n)), offset_);
    if (stopped_) return;  // the callback may stop us
  }
  schedule_read();  // more may be there; let other work run first
}

void LogTail::wait_for_change() {
  if (stopped_ || waiting_) return;
  waiting_ = true;
  inotify_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                      [self = shared_from_this()](boost::system::error_code ec) {
                        self->waiting_ = false;
                        if (ec || self->stopped_) return;
                        self->discard_changes();
                        self->changed();
                      });
}

void LogTail::discard_changes() {
  // Drain the queued events; their content does not matter, only that the
  // file changed, and the read that follows sees every change before it.
  std::array<char, 4096> events;
  while (::read(inotify_.native_handle(), events.data(), events.size()) > 0) {
  }
}

void LogTail::changed() {
  if (coalescing_.count() <= 0) {
    read_some();
    return;
  }
  start_window();
}

void LogTail::start_window() {
  if (!coalesce_timer_) coalesce_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
  coalesce_timer_->expires_after(coalescing_);
  coalesce_timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->stopped_) return;
    self->read_some();
  });
}

}  // namespace lpd::daemon
