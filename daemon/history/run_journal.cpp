#include "daemon/history/run_journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "daemon/history/event_line.h"
#include "daemon/runs/run_registry.h"

namespace lpd::daemon {

RunJournal::RunJournal(boost::asio::io_context& io, EventBus& events, const StateStore& store, EventLog& log,
                       std::function<bool(std::string_view)> forgotten)
    : store_(store), log_(log), forgotten_(std::move(forgotten)), timer_(io) {
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
    journal.fd.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!journal.fd) spdlog::warn("cannot open the journal of run {}: {}", run_id, std::strerror(errno));
  } catch (const std::exception& e) {
    spdlog::warn("cannot open the journal of run {}: {}", run_id, e.what());
  }
  last_ = &*open_.emplace(run_id, std::move(journal)).first;
  return &last_->second;
}

void RunJournal::write_out(const std::string& run_id, Journal& journal) {
  if (journal.buffer.empty()) return;
  buffered_ -= std::min(buffered_, journal.buffer.size());
  std::string_view rest = journal.buffer;
  // One write() per batch of whole lines: readers never see half a line
  // unless the disk fills, and then only at the end.
  while (journal.fd && !rest.empty()) {
    const ssize_t n = ::write(journal.fd.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      spdlog::warn("cannot append to the journal of run {}: {}", run_id, std::strerror(errno));
      break;
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  journal.buffer.clear();
}

void RunJournal::flush() {
  if (buffered_ == 0 && log_.pending_bytes() == 0) return;  // called after every batch: cheap when idle
  timer_.cancel();
  armed_ = false;
  for (auto& [run_id, journal] : open_) write_out(run_id, journal);
  log_.flush();
  buffered_ = 0;
}

void RunJournal::forget(std::string_view run_id) {
  auto it = open_.find(run_id);
  if (it == open_.end()) return;
  buffered_ -= std::min(buffered_, it->second.buffer.size());
  if (last_ == &*it) last_ = nullptr;
  open_.erase(it);
}

void RunJournal::schedule() {
  if (buffered_ + log_.pending_bytes() >= kFlushBytes) {
    flush();
    return;
  }
  if (armed_) return;
  armed_ = true;
  timer_.expires_after(kCoalesce);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    armed_ = false;
    flush();
  });
}

void RunJournal::append(const Event& e) {
  const EventLineParts parts(e);  // both lines share them
  log_.append(e, parts);
  if (!e.run_id.empty() && is_safe_id(e.run_id) && !(forgotten_ && forgotten_(e.run_id))) {
    Journal* journal = open_journal(e.run_id);
    const std::size_t before = journal->buffer.size();
    append_run_journal_line(journal->buffer, e, parts);
    buffered_ += journal->buffer.size() - before;
  }
  if (e.type == "run.ended") {
    // Whoever hears of the end next (run.done, a restarted lpd) finds every
    // line of the run written.
    flush();
    forget(e.run_id);
    return;
  }
  schedule();
}

}  // namespace lpd::daemon
