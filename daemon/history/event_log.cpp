#include "daemon/history/event_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include <spdlog/spdlog.h>

#include "daemon/history/event_line.h"
#include "daemon/core/state_store.h"
#include "daemon/core/write_all.h"

namespace lpd::daemon {
namespace {

constexpr std::size_t kNameDigits = 20;
constexpr std::string_view kSegmentSuffix = ".jsonl";
constexpr std::size_t kReadChunk = 256 * 1024;

/// The first seq a segment's name gives ("00000000000000004097.jsonl"), or
/// nullopt for any other name (lpd's own `.new` files, strangers).
std::optional<std::uint64_t> segment_seq(std::string_view name) {
  if (name.size() != kNameDigits + kSegmentSuffix.size() || name.substr(kNameDigits) != kSegmentSuffix) return std::nullopt;
  std::uint64_t seq = 0;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + kNameDigits, seq);
  if (ec != std::errc() || ptr != name.data() + kNameDigits) return std::nullopt;
  return seq;
}

std::string segment_name(std::uint64_t first_seq) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020llu", static_cast<unsigned long long>(first_seq));
  return std::string(buf) + std::string(kSegmentSuffix);
}


}  // namespace

std::string EventLog::path_of(const Segment& s) const { return dir_ + "/" + segment_name(s.first_seq); }

std::uint64_t EventLog::open() {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
    throw std::system_error(errno, std::generic_category(), "cannot make " + dir_);
  struct stat st {};
  if (::lstat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw std::system_error(ENOTDIR, std::generic_category(), dir_ + " is not a directory");
  UniqueFd dir_owned(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir_owned) throw std::system_error(errno, std::generic_category(), "cannot open " + dir_);
  DIR* listing = ::fdopendir(dir_owned.get());
  if (!listing) throw std::system_error(errno, std::generic_category(), "cannot list " + dir_);
  const int dir_fd = dir_owned.release();  // closedir closes it
  segments_.clear();
  while (const dirent* entry = ::readdir(listing)) {
    const auto seq = segment_seq(entry->d_name);
    if (!seq) continue;
    struct stat file {};
    if (::fstatat(dir_fd, entry->d_name, &file, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(file.st_mode)) continue;
    Segment s;
    s.first_seq = *seq;
    s.size = static_cast<std::uint64_t>(file.st_size);
    segments_.push_back(std::move(s));
  }
  ::closedir(listing);
  std::sort(segments_.begin(), segments_.end(),
            [](const Segment& a, const Segment& b) { return a.first_seq < b.first_seq; });

  // The last seq: the last complete line of the last segment that has one.
  last_seq_ = 0;
  last_time_ = 0;
  for (auto s = segments_.rbegin(); s != segments_.rend() && last_seq_ == 0; ++s) {
    if (s->size == 0) continue;
    const std::uint64_t window = std::min<std::uint64_t>(s->size, 2 * 1024 * 1024);
    std::uint64_t last_in_window = 0;
    scan(*s, s->size - window, [&](std::string_view line, std::uint64_t) {
      const auto seq = seq_of_line(line);
      if (!seq || *seq <= last_in_window) return true;
      last_in_window = *seq;
      const auto head = head_of_event_line(line);
      last_time_ = head ? std::strtod(std::string(head->time).c_str(), nullptr) : 0;
      return true;
    });
    last_seq_ = last_in_window;
  }
  return last_seq_;
}

void EventLog::append(const Event& e) { append(e, EventLineParts(e)); }

void EventLog::append(const Event& e, const EventLineParts& parts) {
  pending_index_.emplace_back(e.seq, pending_.size());
  append_event_line(pending_, e, parts);
  if (e.run_id.empty())
    pending_summary_.oldest_runless = std::min(pending_summary_.oldest_runless, e.time);
  else if (pending_summary_.run_ids.empty() || *last_run_id_ != e.run_id)  // events come in runs of one run
    last_run_id_ = &*pending_summary_.run_ids.insert(e.run_id).first;
  last_seq_ = e.seq;
}

void EventLog::start_segment(std::uint64_t first_seq) {
  current_.reset();
  if (segments_.empty() || segments_.back().first_seq != first_seq) {
    Segment s;
    s.first_seq = first_seq;
    s.indexed = true;
    s.summary.emplace();  // empty, and every line of it goes through append()
    segments_.push_back(std::move(s));
  }
  Segment& s = segments_.back();
  if (!s.indexed) build_index(s);
  const std::string path = path_of(s);
  current_.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!current_) {
    spdlog::warn("cannot open events journal {}: {}", path, std::strerror(errno));
    return;
  }
  struct stat st {};
  if (::fstat(current_.get(), &st) == 0) s.size = static_cast<std::uint64_t>(st.st_size);
  next_index_at_ = s.size;
}

bool EventLog::flush() {
  if (pending_.empty()) return true;
  if (!current_ || segments_.back().size >= kSegmentBytes) start_segment(pending_index_.front().first);
  // The buffers are cleared, not released, once written or given up: the
  // next batch reuses them (a fresh buffer per batch cost a page fault for
  // every 4 KiB it grew through, several per test).
  bool keep = false;
  struct ClearPending {
    EventLog& log;
    bool& keep;
    ~ClearPending() {
      if (keep) return;
      log.pending_.clear();
      log.pending_index_.clear();
      log.pending_summary_ = Summary{};
      log.last_run_id_ = nullptr;
    }
  } clear_pending{*this, keep};
  const std::string& batch = pending_;
  const auto& index = pending_index_;
  Summary& summary = pending_summary_;
  if (!current_) return false;  // logged by start_segment; the batch is lost
  Segment& s = segments_.back();
  if (write_all(current_.get(), batch) != 0) {
    const int err = errno;
    // What part of the batch made it is cut off again: no torn line stays,
    // and the whole batch goes in at the next try.
    if (::ftruncate(current_.get(), static_cast<off_t>(s.size)) != 0) {
      spdlog::warn("cannot append to events journal {}: {}; nor cut a torn line: a new segment follows",
                   path_of(s), std::strerror(err));
      current_.reset();
      struct stat st {};
      if (::stat(path_of(s).c_str(), &st) == 0) s.size = static_cast<std::uint64_t>(st.st_size);
      s.indexed = false;
      failing_ = true;
      return false;
    }
    keep = pending_.size() <= kMaxPendingBytes;
    if (!failing_ || !keep)
      spdlog::warn("cannot append to events journal {}: {}; {}", path_of(s), std::strerror(err),
                   keep ? "its events are kept in memory and written when it can be"
                        : "over 64 MiB of events waited: they are dropped (lpctl events no longer lists them)");
    failing_ = true;
    return false;
  }
  if (failing_) spdlog::info("events journal {} written again", path_of(s));
  failing_ = false;
  if (s.summary) {
    s.summary->run_ids.merge(summary.run_ids);
    s.summary->oldest_runless = std::min(s.summary->oldest_runless, summary.oldest_runless);
  }
  for (const auto& [seq, offset] : index) {
    if (s.size + offset < next_index_at_) continue;
    s.index.emplace_back(seq, s.size + offset);
    next_index_at_ = s.size + offset + kIndexStride;
  }
  s.size += batch.size();
  return true;
}

std::uint64_t EventLog::scan(const Segment& s, std::uint64_t offset,
                             const std::function<bool(std::string_view, std::uint64_t)>& line) const {
  UniqueFd fd(::open(path_of(s).c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return 0;
  std::string carry;            // the start of a line that continues in the next chunk
  std::uint64_t carry_at = offset;  // its offset in the file
  std::string chunk(kReadChunk, '\0');
  std::uint64_t at = offset;
  bool skipping = false;  // inside a line longer than any record lpd reads
  for (;;) {
    const ssize_t n = ::pread(fd.get(), chunk.data(), chunk.size(), static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::string_view data(chunk.data(), static_cast<std::size_t>(n));
    while (!data.empty()) {
      const auto newline = data.find('\n');
      if (newline == std::string_view::npos) {
        if (!skipping) carry.append(data);
        if (carry.size() > StateStore::kMaxRecordBytes) {
          carry.clear();
          skipping = true;
        }
        break;
      }
      std::string_view piece = data.substr(0, newline);
      const std::uint64_t piece_end = at + (piece.data() - chunk.data()) + newline + 1;
      if (skipping) {
        skipping = false;
      } else if (carry.empty()) {
        if (!line(piece, piece_end - piece.size() - 1)) return piece_end - offset;
      } else {
        carry.append(piece);
        if (!line(carry, carry_at)) return piece_end - offset;
      }
      carry.clear();
      carry_at = piece_end;
      data.remove_prefix(newline + 1);
    }
    at += static_cast<std::uint64_t>(n);
  }
  return at - offset;
}

void EventLog::build_index(Segment& s) {
  s.index.clear();
  std::uint64_t next = 0;
  scan(s, 0, [&](std::string_view line, std::uint64_t offset) {
    if (offset < next) return true;
    if (auto seq = seq_of_line(line)) {
      s.index.emplace_back(*seq, offset);
      next = offset + kIndexStride;
    }
    return true;
  });
  s.indexed = true;
}

EventLog::Page EventLog::read(std::uint64_t after, std::size_t max_events, std::size_t max_scan_bytes,
                              const std::function<bool(const Event&)>& keep,
                              const std::function<bool(const LineHead&)>& wanted,
                              const std::function<bool(const Summary&)>& dead_segment) {
  flush();
  Page page;
  page.last_scanned = after;
  if (segments_.empty() || max_events == 0) {
    page.exhausted = true;
    return page;
  }
  // The last segment that starts at or before after + 1 holds it, if any does.
  auto it = std::upper_bound(segments_.begin(), segments_.end(), after + 1,
                             [](std::uint64_t seq, const Segment& s) { return seq < s.first_seq; });
  std::size_t i = it == segments_.begin() ? 0 : static_cast<std::size_t>(it - segments_.begin()) - 1;
  std::uint64_t scanned = 0;
  bool stopped = false;
  for (; i < segments_.size() && !stopped; ++i) {
    Segment& s = segments_[i];
    if (dead_segment && i + 1 < segments_.size() && s.summary && dead_segment(*s.summary)) {
      // Nothing in it is kept: the cursor moves past its last seq unread.
      page.last_scanned = std::max(page.last_scanned, segments_[i + 1].first_seq - 1);
      continue;
    }
    if (!s.indexed) build_index(s);
    std::uint64_t offset = 0;
    for (const auto& [seq, at] : s.index) {
      if (seq > after + 1) break;
      offset = at;
    }
    scan(s, offset, [&](std::string_view line, std::uint64_t) {
      const auto seq = seq_of_line(line);
      if (!seq || *seq <= after || *seq <= page.last_scanned) return true;
      if (scanned + line.size() > max_scan_bytes && page.last_scanned > after) {
        stopped = true;
        return false;
      }
      scanned += line.size() + 1;
      page.last_scanned = *seq;
      if (wanted) {
        const auto head = head_of_event_line(line);
        if (head && !wanted(*head)) return true;  // not parsed at all
      }
      auto e = decode_event_line(line);
      if (e && keep(*e)) page.events.push_back(std::move(*e));
      if (page.events.size() >= max_events) {
        stopped = true;
        return false;
      }
      return true;
    });
  }
  page.exhausted = !stopped;
  page.bytes = scanned;
  return page;
}

namespace {
/// The run id and time of a journal line, off its head when it can be
/// read there, else from the whole line parsed; nullopt when the line is
/// not a complete record.
struct LineFacts {
  std::string run_id;
  double time = 0;
};
std::optional<LineFacts> facts_of_line(std::string_view line) {
  if (const auto head = head_of_event_line(line)) {
    double time = 0;
    const char* end = head->time.data() + head->time.size();
    const auto [ptr, ec] = std::from_chars(head->time.data(), end, time);
    // The rest of the line is not checked: a line damaged past its head is
    // kept or dropped by its run and time, and a reader skips it as before.
    if (ec == std::errc() && ptr == end) return LineFacts{std::string(head->run_id), time};
  }
  auto e = decode_event_line(line);
  if (!e) return std::nullopt;
  return LineFacts{std::move(e->run_id), e->time};
}
}  // namespace

bool EventLog::compact_one(std::size_t& cursor, const DeadEvent& dead,
                           const std::function<bool(const Summary&)>& may_hold_dead) {
  flush();
  const std::size_t sealed = current_ ? segments_.size() - 1 : segments_.size();
  if (cursor >= sealed) return false;
  Segment& s = segments_[cursor];
  if (s.summary && !may_hold_dead(*s.summary)) {
    ++cursor;  // nothing in it can be dead: not even read
    return true;
  }
  std::string alive;
  std::size_t dropped = 0;
  Summary summary;
  alive.reserve(s.size);
  scan(s, 0, [&](std::string_view line, std::uint64_t) {
    auto facts = facts_of_line(line);
    if (!facts || dead(facts->run_id, facts->time)) {
      ++dropped;
    } else {
      alive.append(line);
      alive.push_back('\n');
      if (facts->run_id.empty())
        summary.oldest_runless = std::min(summary.oldest_runless, facts->time);
      else
        summary.run_ids.insert(std::move(facts->run_id));
    }
    return true;
  });
  s.summary = std::move(summary);
  const std::string path = path_of(s);
  if (alive.empty()) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      spdlog::warn("cannot remove events journal {}: {}", path, std::strerror(errno));
      ++cursor;
      return true;
    }
    segments_.erase(segments_.begin() + static_cast<std::ptrdiff_t>(cursor));
    return true;
  }
  ++cursor;
  if (dropped == 0 && alive.size() == s.size) return true;
  // Write the survivors beside it, then rename over it: a reader or a
  // restarted lpd sees the old segment or the new one, never half of one.
  const std::string fresh = path + ".new";
  UniqueFd fd(::open(fresh.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd || write_all(fd.get(), alive) != 0 || ::rename(fresh.c_str(), path.c_str()) != 0) {
    spdlog::warn("cannot compact events journal {}: {}", path, std::strerror(errno));
    ::unlink(fresh.c_str());
    return true;
  }
  s.size = alive.size();
  s.index.clear();
  s.indexed = false;
  return true;
}

}  // namespace lpd::daemon
