#include "daemon/logs/log_cap.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "daemon/logs/log_file.h"
#include "daemon/core/unique_fd.h"
#include "daemon/core/untrusted_file.h"

namespace lpd::daemon {

std::optional<LogUse> measure_log(const std::string& path, std::uint64_t head) {
  auto log = open_log_to_read(path);
  if (!log) return std::nullopt;
  const UniqueFd& fd = log->fd;
  const struct stat& st = log->st;
  LogUse use;
  use.path = path;
  use.disk_bytes = static_cast<std::uint64_t>(st.st_blocks) * 512;
  use.size = static_cast<std::uint64_t>(st.st_size);
  use.kept_from = next_data_offset(fd.get(), head);
  use.written_at = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  return use;
}

FrontFreed free_log_front(const std::string& path, std::uint64_t keep_from) {
  return free_log_range(path, 0, keep_from);
}

FrontFreed free_log_range(const std::string& path, std::uint64_t from, std::uint64_t keep_from) {
  // Opened for writing (fallocate needs it), never through a link, never
  // blocking on a FIFO; O_APPEND for the marker line of the fallback.
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) throw std::system_error(errno, std::generic_category(), "cannot open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    throw std::system_error(EINVAL, std::generic_category(), path + " is not a regular file");
  if (keep_from <= from) return {false, keep_from};
  if (::fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(from),
                  static_cast<off_t>(keep_from - from)) == 0)
    return {false, keep_from};
  if (errno != EOPNOTSUPP && errno != ENOSYS)
    throw std::system_error(errno, std::generic_category(), "cannot free the start of " + path);
  // No holes here: empty it. Readers holding an offset past the new end
  // start again from 0 (LogTail); the line tells a reader what happened.
  const auto held = static_cast<std::uint64_t>(st.st_size);
  if (::ftruncate(fd.get(), 0) != 0)
    throw std::system_error(errno, std::generic_category(), "cannot empty " + path);
  const std::string line = "[lpd: this log passed its size cap and its file system cannot free part of a file: the " +
                           std::to_string(held) + " bytes before this line were dropped]\n";
  if (::write(fd.get(), line.data(), line.size()) < 0) {
    // The helper's own output matters more than the note.
  }
  return {true, held};
}

std::uint64_t release_reserved_past_end(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) throw std::system_error(errno, std::generic_category(), "cannot open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    throw std::system_error(EINVAL, std::generic_category(), path + " is not a regular file");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const auto disk = static_cast<std::uint64_t>(st.st_blocks) * 512;
  const auto block = static_cast<std::uint64_t>(st.st_blksize > 0 ? st.st_blksize : 4096);
  // Blocks up to the end, rounded up, plus one of slack: no reservation.
  if (disk <= (size + block - 1) / block * block + block) return 0;
  const struct timespec written = st.st_mtim;
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
    throw std::system_error(errno, std::generic_category(), "cannot free the space reserved past the end of " + path);
  // Its mtime orders the owner's logs for the cap (least recently written
  // first): freeing is not writing.
  const struct timespec times[2] = {{0, UTIME_OMIT}, written};
  ::futimens(fd.get(), times);
  if (::fstat(fd.get(), &st) != 0) return 0;
  const auto after = static_cast<std::uint64_t>(st.st_blocks) * 512;
  return disk > after ? disk - after : 0;
}

std::optional<LogParts> log_parts(const std::string& path) {
  auto log = open_log_to_read(path);
  if (!log) return std::nullopt;
  LogParts parts;
  parts.size = static_cast<std::uint64_t>(log->st.st_size);
  parts.disk_bytes = static_cast<std::uint64_t>(log->st.st_blocks) * 512;
  const off_t hole = ::lseek(log->fd.get(), 0, SEEK_HOLE);
  // No SEEK_HOLE (or an error): no hole of lpd's either.
  parts.head_end = hole >= 0 ? std::min(static_cast<std::uint64_t>(hole), parts.size) : parts.size;
  parts.kept_from = std::min(next_data_offset(log->fd.get(), parts.head_end), parts.size);
  return parts;
}

std::uint64_t log_block_size(const std::string& dir) {
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0 || vfs.f_bsize == 0) return 4096;
  const std::uint64_t block = vfs.f_bsize;
  // A power of two, as the rules expect; else the common page size.
  return (block & (block - 1)) == 0 ? block : 4096;
}

LogGrowthWatch::LogGrowthWatch(boost::asio::io_context& io, std::chrono::milliseconds window, OnGrown on_grown)
    : io_(io), window_(window), on_grown_(std::move(on_grown)), timer_(io) {}

LogGrowthWatch::~LogGrowthWatch() {
  *alive_ = false;
  timer_.cancel();
}

bool LogGrowthWatch::watch(const std::string& path, uid_t owner) {
  if (watches_.count(path)) return true;
  if (!inotify_) {
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return false;
    inotify_.emplace(io_, fd);
  }
  const int wd = ::inotify_add_watch(inotify_->native_handle(), path.c_str(), IN_MODIFY | IN_DONT_FOLLOW);
  if (wd < 0) return false;
  owners_[wd] = owner;
  watches_[path] = wd;
  wait();
  return true;
}

void LogGrowthWatch::unwatch(const std::string& path) {
  auto it = watches_.find(path);
  if (it == watches_.end()) return;
  ::inotify_rm_watch(inotify_->native_handle(), it->second);
  owners_.erase(it->second);
  watches_.erase(it);
}

void LogGrowthWatch::hurry() { hurried_ = true; }

void LogGrowthWatch::wait() {
  if (waiting_ || window_open_ || !inotify_) return;
  waiting_ = true;
  inotify_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                       [this, alive = alive_](boost::system::error_code ec) {
                         if (!*alive) return;
                         waiting_ = false;
                         if (ec) return;
                         read_events();
                         open_window();
                       });
}

void LogGrowthWatch::open_window() {
  // Quiet for one window: the writes meanwhile pile up as one event.
  window_open_ = true;
  // h14fixA: short after a check that found logs far over their cap.
  timer_.expires_after(hurried_ ? std::max(window_ / 10, std::chrono::milliseconds(5)) : window_);
  hurried_ = false;
  timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (!*alive || ec) return;
    // Logs that grew during this window will likely grow during the next
    // (a test suite's output): then look again a window on, one wake-up per
    // window, instead of waking on the next write and then waiting out a
    // window (two). A window without a write goes back to inotify.
    const bool grew_meanwhile = read_events();
    window_open_ = grew_meanwhile;  // while still open, a watch() added meanwhile waits for it
    auto grown = std::move(grown_);
    grown_.clear();
    for (uid_t owner : grown) on_grown_(owner);
    if (!*alive) return;
    if (grew_meanwhile)
      open_window();
    else
      wait();
  });
}

bool LogGrowthWatch::read_events() {
  alignas(struct inotify_event) std::array<char, 8192> buffer;
  bool any = false;
  for (;;) {
    const ssize_t n = ::read(inotify_->native_handle(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return any;
    any = true;
    for (ssize_t at = 0; at < n;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(buffer.data() + at);
      at += static_cast<ssize_t>(sizeof(struct inotify_event) + event->len);
      if (event->mask & IN_Q_OVERFLOW) {
        for (const auto& [wd, owner] : owners_) grown_.insert(owner);  // lost track: look at all
        continue;
      }
      if (auto it = owners_.find(event->wd); it != owners_.end()) grown_.insert(it->second);
    }
  }
}

}  // namespace lpd::daemon
