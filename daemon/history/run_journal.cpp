#include "daemon/history/run_journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "daemon/core/untrusted_file.h"
#include "daemon/history/event_line.h"
#include "daemon/history/ring_mark.h"
#include "protocol/json_text.h"
#include "daemon/runs/run_registry.h"

namespace lpd::daemon {

namespace {

/// Cuts a torn last line off the journal `fd` (lpd killed with -9 in the
/// middle of a write of several pages: the kernel stops between pages):
/// the next line would otherwise be glued to the fragment, and both lost to
/// every reader. Only lpd writes run journals. Returns the bytes cut.
off_t cut_torn_tail(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size == 0) return 0;
  char last = '\n';
  if (::pread(fd, &last, 1, st.st_size - 1) != 1 || last == '\n') return 0;
  // Back to the last newline, a block at a time.
  char block[65536];
  off_t end = st.st_size;
  while (end > 0) {
    const off_t from = end > static_cast<off_t>(sizeof block) ? end - static_cast<off_t>(sizeof block) : 0;
    const ssize_t n = ::pread(fd, block, static_cast<std::size_t>(end - from), from);
    if (n <= 0) return 0;
    for (ssize_t i = n; i > 0; --i)
      if (block[i - 1] == '\n') {
        const off_t keep = from + i;
        return ::ftruncate(fd, keep) == 0 ? st.st_size - keep : 0;
      }
    end = from;
  }
  return ::ftruncate(fd, 0) == 0 ? st.st_size : 0;
}

}  // namespace

RunJournal::RunJournal(boost::asio::io_context& io, EventBus& events, const StateStore& store, EventLog& log,
                       std::function<bool(std::string_view)> forgotten, JournalLimits limits,
                       std::function<std::optional<RunOwner>(const std::string&)> owner_of,
                       std::function<void()> over_owner)
    : events_(events),
      store_(store),
      log_(log),
      forgotten_(std::move(forgotten)),
      quota_(limits),
      owner_of_(std::move(owner_of)),
      over_owner_(std::move(over_owner)),
      timer_(io) {
  events.subscribe([this](const Event& e) { append(e); });
}

RunJournal::~RunJournal() { flush(); }

RunJournal::Journal* RunJournal::open_journal(const std::string& run_id) {
  // Events come in runs of the same run: one lookup per change of run.
  if (last_ && last_->first == run_id) return &last_->second;
  auto it = open_.find(run_id);
  if (it != open_.end()) {
    last_ = &*it;
    return &it->second;
  }
  if (open_.size() >= kMaxOpen) {
    // Close the run that sorts first (any one will do); its lines go out first.
    auto victim = open_.begin();
    write_out(victim->first, victim->second);
    if (last_ == &*victim) last_ = nullptr;
    open_.erase(victim);
  }
  Journal journal;
  try {
    store_.make_dir("runs/" + run_id);
    const std::string path = store_.path("runs/" + run_id + "/events.jsonl");
    journal.fd.reset(::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!journal.fd) spdlog::warn("cannot open the journal of run {}: {}", run_id, std::strerror(errno));
    if (journal.fd) {
      if (const off_t cut = cut_torn_tail(journal.fd.get()); cut > 0)
        spdlog::warn("run {}: its journal ended in a torn line ({} bytes: lpd was killed mid-write, or stopped "
                     "with lines the full disk refused): cut off",
                     run_id, cut);
      // What the file holds is what counts, whatever was counted before.
      struct stat st {};
      if (::fstat(journal.fd.get(), &st) == 0) {
        const auto run = owner_of_ ? owner_of_(run_id) : std::nullopt;
        if (run) {
          journal.owner = run->owner;
          quota_.measured(run_id, run->owner, static_cast<std::uint64_t>(st.st_size), run->active);
        }
      }
    }
  } catch (const std::exception& e) {
    spdlog::warn("cannot open the journal of run {}: {}", run_id, e.what());
  }
  last_ = &*open_.emplace(run_id, std::move(journal)).first;
  return &last_->second;
}

bool RunJournal::write_out(const std::string& run_id, Journal& journal) {
  if (journal.buffer.empty()) return true;
  std::size_t written = 0;
  bool ok = true;
  // One write() per batch of whole lines: readers never see half a line
  // unless the disk fills, and then the rest follows when it can.
  while (journal.fd && written < journal.buffer.size()) {
    const ssize_t n = ::write(journal.fd.get(), journal.buffer.data() + written, journal.buffer.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      if (!failing_)
        spdlog::warn("cannot append to the journal of run {}: {}; its lines are kept and written when they can be",
                     run_id, std::strerror(errno));
      break;
    }
    written += static_cast<std::size_t>(n);
  }
  if (!journal.fd) written = journal.buffer.size();  // no journal to write to (logged when opening)
  buffered_ -= std::min(buffered_, written);
  if (ok || written == journal.buffer.size()) {
    journal.buffer.clear();
    return true;
  }
  journal.buffer.erase(0, written);
  if (journal.buffer.size() > kMaxUnwrittenBytes) {
    spdlog::warn("run {}: over 64 MiB of its journal could not be written: dropped", run_id);
    buffered_ -= std::min(buffered_, journal.buffer.size());
    journal.buffer.clear();
  }
  return false;
}

void RunJournal::flush() {
  if (buffered_ == 0 && log_.pending_bytes() == 0) return;  // called after every batch: cheap when idle
  timer_.cancel();
  armed_ = false;
  bool all = true;
  for (auto& [run_id, journal] : open_) all &= write_out(run_id, journal);
  all &= log_.flush();
  if (all && failing_) spdlog::info("the run journals are written again");
  failing_ = !all;
  // Ended runs close once their last lines are out.
  std::vector<std::string> written;
  for (const auto& run_id : closing_) {
    auto journal = open_.find(run_id);
    if (journal == open_.end() || journal->second.buffer.empty()) written.push_back(run_id);
  }
  for (const auto& run_id : written) forget(run_id);  // also leaves closing_
  if (failing_) arm(kRetry);  // tried again at a pace of its own, not at every batch
}

RunJournal::Unwritten RunJournal::unwritten() const {
  Unwritten left;
  for (const auto& [run_id, journal] : open_)
    if (!journal.buffer.empty()) left.runs.emplace(run_id, journal.buffer.size());
  left.events = log_.pending_bytes();
  return left;
}

void RunJournal::arm(std::chrono::milliseconds after) {
  armed_ = true;
  timer_.expires_after(after);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    armed_ = false;
    flush();
  });
}

void RunJournal::removed(std::string_view run_id) {
  forget(run_id);
  quota_.forget(run_id);
  if (auto it = refused_.find(run_id); it != refused_.end()) refused_.erase(it);
}

void RunJournal::forget(std::string_view run_id) {
  if (auto closing = closing_.find(std::string(run_id)); closing != closing_.end()) closing_.erase(closing);
  auto it = open_.find(run_id);
  if (it == open_.end()) return;
  buffered_ -= std::min(buffered_, it->second.buffer.size());
  if (last_ == &*it) last_ = nullptr;
  open_.erase(it);
}

void RunJournal::schedule() {
  if (failing_) return;  // the retry timer is armed
  if (buffered_ + log_.pending_bytes() >= kFlushBytes) {
    flush();
    return;
  }
  if (!armed_) arm(kCoalesce);
}

bool RunJournal::admitted(const Event& e, const Journal& journal, std::size_t bytes) {
  const uid_t owner = journal.owner.value_or(e.owner);
  // A run's end, and the note that its lines are refused, are written
  // whatever the limits: readers of the journal must know both.
  if (e.type == "run.ended") {
    quota_.force(e.run_id, owner, bytes);
    return true;
  }
  const auto verdict = quota_.admit(e.run_id, owner, bytes);
  if (verdict == JournalQuota::Verdict::kWrite) {
    if (over_owner_ && quota_.over_owner(owner)) {
      const auto now = std::chrono::steady_clock::now();
      if (now - over_owner_told_ >= std::chrono::seconds(1)) {
        over_owner_told_ = now;
        over_owner_();
      }
    }
    return true;
  }
  if (refused_.insert(e.run_id).second) {
    const bool run_full = verdict == JournalQuota::Verdict::kRunFull;
    const std::uint64_t limit = run_full ? quota_.limits().per_run : quota_.limits().per_owner;
    spdlog::warn("run {}: {} ({} bytes, {}): lpd keeps no more of its events on disk; they are still sent live, "
                 "and its report is still complete unless lpd restarts before the run ends",
                 e.run_id,
                 run_full ? "its events journal is full" : "the events journals of its user's running runs are full",
                 limit, run_full ? "--run-events-max" : "--run-events-per-user-max");
    std::string data = "{\"limit\":" + std::to_string(limit) + ",\"reason\":\"" + (run_full ? "run" : "owner") + "\"}";
    // The run's journal says so at once, in this batch, before the ring's
    // read position moves past the refused record: an lpd killed any time
    // after finds the note (the published event below could come too late).
    pending_note_ = data.substr(0, data.size() - 1) + ",\"event\":\"" + std::string(kEventsNotKept) + "\",\"time\":";
    protocol::append_json_number(pending_note_, e.time);
    pending_note_ += ",\"run_id\":";
    protocol::append_json_string(pending_note_, e.run_id);
    pending_note_ += "}\n";
    // Published after this one is delivered (append() publishes nothing);
    // its line goes to lpd's events journal only.
    boost::asio::post(timer_.get_executor(), [this, run_id = e.run_id, owner, data = std::move(data)]() mutable {
      events_.publish_text(std::string(kEventsNotKept), std::move(data), run_id, owner);
    });
  }
  return false;
}

bool RunJournal::admitted_runless(const Event& e, const EventLineParts& parts) {
  // About the line's size: its envelope and its data.
  const std::uint64_t bytes = 64 + parts.seq.size() + parts.time.size() + parts.type.size() + parts.run_id.size() +
                              e.data_text().size();
  if (quota_.admit_runless(e.owner, bytes, e.time) == JournalQuota::Verdict::kWrite) return true;
  // Said once an hour per user, not per event.
  const auto hour = static_cast<std::int64_t>(e.time / 3600);
  if (auto [it, added] = runless_refused_.try_emplace(e.owner, hour); added || it->second != hour) {
    it->second = hour;
    spdlog::warn("uid {}: its events of no run (helpers' process.* events) in lpd's events journal reached {} "
                 "bytes (--run-events-per-user-max) within --keep-days: lpd keeps no more of them on disk for "
                 "now (they are still sent live)",
                 e.owner, quota_.limits().per_owner);
  }
  return false;
}

void RunJournal::append(const Event& e) {
  const EventLineParts parts(e, parts_buffer_);  // both lines share them
  // The run of the last event passed the checks when its journal opened,
  // and forget() lets go of it: most events skip them.
  Journal* journal = last_ && last_->first == e.run_id ? &last_->second : nullptr;
  // The note that a run's lines are refused is in its journal already
  // (admitted()): this published copy goes to lpd's events journal only.
  const bool note = e.type == kEventsNotKept;
  if (!journal && !note && !e.run_id.empty() && is_safe_id(e.run_id) && !(forgotten_ && forgotten_(e.run_id)))
    journal = open_journal(e.run_id);
  if (note) {
    journal = nullptr;
  } else if (journal) {
    const std::size_t before = journal->buffer.size();
    append_run_journal_line(journal->buffer, e, parts);
    if (!admitted(e, *journal, journal->buffer.size() - before)) {
      // Refused: in neither journal (its copy in the events journal would
      // take as much again).
      journal->buffer.resize(before);
      if (!pending_note_.empty()) {
        journal->buffer += pending_note_;
        buffered_ += pending_note_.size();
        quota_.force(e.run_id, journal->owner.value_or(e.owner), pending_note_.size());
        pending_note_.clear();
      }
      return;
    }
    buffered_ += journal->buffer.size() - before;
    for (auto& runs : ring_reads_)
      if (std::find(runs.begin(), runs.end(), e.run_id) == runs.end()) runs.push_back(e.run_id);
  } else if (!note && !admitted_runless(e, parts)) {
    return;
  }
  log_.append(e, parts);
  if (e.type == "run.ended") {
    quota_.ended(e.run_id);
    // A run's journal ends with its run.ended: no ring mark after it (a
    // restarted lpd does not take an ended run's records again anyway).
    for (auto& runs : ring_reads_) std::erase(runs, e.run_id);
    // Whoever hears of the end next (run.done, a restarted lpd) finds every
    // line of the run written; on a full disk, once it can be.
    closing_.insert(e.run_id);
    flush();
    return;
  }
  schedule();
}

void RunJournal::ring_read_begins() { ring_reads_.emplace_back(); }

void RunJournal::ring_read_ended(std::uint64_t ring_id, std::uint64_t read_to) {
  if (ring_reads_.empty()) return;
  const auto runs = std::move(ring_reads_.back());
  ring_reads_.pop_back();
  for (const auto& run_id : runs) {
    if (forgotten_ && forgotten_(run_id)) continue;
    Journal* journal = open_journal(run_id);
    const std::size_t before = journal->buffer.size();
    append_ring_mark_line(journal->buffer, RingMark{ring_id, read_to, ring_batch_});
    buffered_ += journal->buffer.size() - before;
  }
}

void RunJournal::end_batch() {
  flush();
  ++ring_batch_;
}

namespace {

/// Feeds `feed` the lines of the journal `fd` (`size` bytes) from the last
/// backwards, until it returns false, reading at most `max_bytes`; false
/// when it stopped at that bound.
bool scan_backwards(int fd, off_t size, std::size_t max_bytes, const std::function<bool(std::string_view)>& feed) {
  std::string block;
  std::string carry;  // the start of a line whose beginning is in an earlier block
  off_t end = size;
  std::size_t read_bytes = 0;
  while (end > 0) {
    if (read_bytes >= max_bytes) return false;
    const off_t from = std::max<off_t>(0, end - 65536);
    block.resize(static_cast<std::size_t>(end - from));
    const ssize_t n = ::pread(fd, block.data(), block.size(), from);
    if (n != static_cast<ssize_t>(block.size())) return true;  // shorter than its size said: stop here
    read_bytes += block.size();
    block += carry;
    std::size_t line_end = block.size();
    for (std::size_t i = block.size(); i > 0; --i) {
      if (block[i - 1] != '\n') continue;
      if (!feed(std::string_view(block).substr(i, line_end - i))) return true;
      line_end = i - 1;
    }
    carry.assign(block, 0, line_end);
    end = from;
  }
  feed(carry);
  return true;
}

/// The journal of run `run_id`, opened to read (never through a link, nor
/// blocking on a FIFO planted there); logs why not, but for a journal
/// that does not exist, with `what_then` (what is not done for it).
UniqueFd open_journal_to_read(const StateStore& store, const std::string& run_id, std::string_view what_then,
                              off_t& size) {
  int error = 0;
  UniqueFd fd = open_untrusted(store.path("runs/" + run_id + "/events.jsonl"), O_RDONLY, 0, error);
  struct stat st {};
  if (fd && ::fstat(fd.get(), &st) != 0) {
    error = errno;
    fd.reset();
  }
  if (!fd) {
    if (error != ENOENT) spdlog::warn("run {}: cannot read its journal ({}): {}", run_id, why_not(error), what_then);
    return fd;
  }
  size = st.st_size;
  return fd;
}

}  // namespace

std::size_t RunJournal::restore_lost_batch(const std::vector<std::pair<std::string, uid_t>>& runs) {
  const std::uint64_t logged = log_.last_seq();
  std::vector<Event> lost;
  for (const auto& [run_id, owner] : runs) {
    if (!is_safe_id(run_id)) continue;
    off_t size = 0;
    UniqueFd fd = open_journal_to_read(store_, run_id, "events of its last batch may be missing from lpd's "
                                                       "events journal", size);
    if (!fd) continue;
    const std::size_t before = lost.size();
    const bool whole = scan_backwards(fd.get(), size, kMaxRingMarkScanBytes, [&](std::string_view line) {
      if (line.empty() || parse_ring_mark(line)) return true;
      auto e = decode_run_journal_line(line, owner);
      if (!e) return true;  // a torn last line (cut when the journal is next opened to write)
      if (e->seq <= logged) return false;  // the events journal has this one, and every earlier one
      lost.push_back(std::move(*e));
      return true;
    });
    if (!whole)
      spdlog::warn("run {}: over {} bytes of its journal are past lpd's events journal: not all restored to it",
                   run_id, kMaxRingMarkScanBytes);
    if (lost.size() > before)
      spdlog::info("run {}: {} event(s) of the previous lpd's last batch were in its journal only (lpd was killed "
                   "between the two writes): restored to the events journal",
                   run_id, lost.size() - before);
  }
  if (lost.empty()) return 0;
  std::sort(lost.begin(), lost.end(), [](const Event& a, const Event& b) { return a.seq < b.seq; });
  std::size_t appended = 0;
  for (const Event& e : lost) {
    if (e.seq <= log_.last_seq()) continue;  // one seq in two runs' journals (a copied journal): taken once
    log_.append(e);
    ++appended;
  }
  if (!log_.flush())
    spdlog::warn("the restored events are kept in memory until lpd's events journal can be written");
  return appended;
}

void RunJournal::recall_ring_marks(const std::vector<std::pair<std::string, uid_t>>& runs) {
  for (const auto& [run_id, owner] : runs) {
    if (!is_safe_id(run_id)) continue;
    off_t size = 0;
    UniqueFd fd = open_journal_to_read(store_, run_id, "a ring handed back may have its last records recorded twice",
                                       size);
    if (!fd) continue;
    LastBatchMarks marks;
    if (!scan_backwards(fd.get(), size, kMaxRingMarkScanBytes,
                        [&marks](std::string_view line) { return marks.feed(line); }))
      spdlog::warn("run {}: its journal's last batch is over {} bytes: ring marks before them not read", run_id,
                   kMaxRingMarkScanBytes);
    for (const auto& [ring_id, to] : marks.marks()) {
      auto& kept = recalled_marks_[{ring_id, owner}];
      kept = std::max(kept, to);
    }
  }
  if (!recalled_marks_.empty())
    spdlog::debug("recalled where {} event ring(s) were journaled to", recalled_marks_.size());
}

std::optional<std::uint64_t> RunJournal::take_journaled_to(std::uint64_t ring_id, uid_t uid) {
  auto it = recalled_marks_.find({ring_id, uid});
  if (it == recalled_marks_.end()) return std::nullopt;
  const auto to = it->second;
  recalled_marks_.erase(it);
  return to;
}

}  // namespace lpd::daemon
