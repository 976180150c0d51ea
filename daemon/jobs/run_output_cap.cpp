#include "daemon/jobs/run_output_cap.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

#include <spdlog/spdlog.h>

#include "daemon/logs/log_file.h"

namespace lpd::daemon {

RunOutputCap::RunOutputCap(boost::asio::io_context& io, RunOutputLimits limits, std::string runs_dir,
                           OnDropped on_dropped)
    : io_(io),
      limits_(limits),
      runs_dir_(std::move(runs_dir)),
      on_dropped_(std::move(on_dropped)),
      watch_(io, kWindow, [this](uid_t owner) { enforce(owner); }) {}

std::string RunOutputCap::output_key(const std::string& run_id, OutputStream stream) {
  return stream == OutputStream::kStderr ? run_id + "/stderr" : run_id;
}

void RunOutputCap::started(const std::string& run_id, uid_t owner, const std::string& path, OutputStream stream) {
  if (unbounded()) return;
  const std::string key = output_key(run_id, stream);
  Output& out = outputs_[key];
  if (out.live) return;
  Owned& owned = by_owner_[owner];
  if (out.use) owned.ended_disk -= std::min(owned.ended_disk, out.use->disk_bytes);
  owned.ended.erase(key);
  owned.live.insert(key);
  out.run_id = run_id;
  out.stream = stream;
  out.owner = owner;
  out.path = path;
  out.live = true;
  out.use.reset();
  if (!watch_.watch(path, owner))
    spdlog::warn("run {}: cannot watch its output {} for the size cap ({}); it is capped when it ends or lpd restarts",
                 run_id, path, std::strerror(errno));
  enforce(owner);  // what was written while no lpd watched (a restart)
}

void RunOutputCap::ended(const std::string& run_id) {
  for (const OutputStream stream : {OutputStream::kStdout, OutputStream::kStderr})
    end_output(output_key(run_id, stream));
}

void RunOutputCap::end_output(const std::string& key) {
  auto it = outputs_.find(key);
  if (it == outputs_.end() || !it->second.live) return;
  Output& out = it->second;
  out.live = false;
  watch_.unwatch(out.path);
  Owned& owned = by_owner_[out.owner];
  owned.live.erase(key);
  owned.ended.insert(key);
  owned.unmeasured = true;
  enforce(out.owner);  // its last writes; measures it for the owner's total
}

void RunOutputCap::known(const std::string& run_id, uid_t owner, const std::string& path, OutputStream stream) {
  if (unbounded()) return;
  const std::string key = output_key(run_id, stream);
  Output& out = outputs_[key];
  if (out.live) return;
  out.run_id = run_id;
  out.stream = stream;
  out.owner = owner;
  out.path = path;
  Owned& owned = by_owner_[owner];
  owned.ended.insert(key);
  owned.unmeasured = true;
}

void RunOutputCap::forget(const std::set<std::string>& run_ids) {
  for (const auto& run_id : run_ids)
    for (const OutputStream stream : {OutputStream::kStdout, OutputStream::kStderr}) {
      const std::string key = output_key(run_id, stream);
      auto it = outputs_.find(key);
      if (it == outputs_.end()) continue;
      Output& out = it->second;
      if (out.live) watch_.unwatch(out.path);
      if (auto owned = by_owner_.find(out.owner); owned != by_owner_.end()) {
        owned->second.live.erase(key);
        owned->second.ended.erase(key);
        if (out.use) owned->second.ended_disk -= std::min(owned->second.ended_disk, out.use->disk_bytes);
        if (owned->second.live.empty() && owned->second.ended.empty()) by_owner_.erase(owned);
      }
      outputs_.erase(it);
    }
}

void RunOutputCap::enforce(uid_t owner) {
  if (unbounded()) return;
  const auto found = by_owner_.find(owner);
  if (found == by_owner_.end()) return;
  Owned& owned = found->second;
  if (block_ == 0) block_ = log_block_size(runs_dir_);
  const LogCaps caps = run_output_caps(limits_, block_);
  std::vector<LogUse> uses;
  std::map<std::string, std::string> whose;  // path -> output key
  std::set<std::string> planned;
  if (owned.unmeasured) {
    // Ended outputs not yet measured (at their end, or first after a
    // restart): measured once; they are written no more.
    for (const auto& key : owned.ended) {
      Output& out = outputs_.at(key);
      if (out.use) continue;
      out.use = measure_log(out.path, caps.keep_head).value_or(LogUse{});
      out.use->current = true;  // run.info names it: emptied, never removed
      owned.ended_disk += out.use->disk_bytes;
      // Its last writes may have passed the per-run cap: planned now, once.
      if (limits_.per_run > 0 && out.use->disk_bytes > limits_.per_run) {
        whose.emplace(out.path, key);
        uses.push_back(*out.use);
        planned.insert(key);
      }
    }
    owned.unmeasured = false;
  }
  std::uint64_t total = owned.ended_disk;
  for (const auto& key : owned.live) {
    const Output& out = outputs_.at(key);
    auto use = measure_log(out.path, caps.keep_head);
    if (!use) continue;
    use->live = true;
    use->current = true;
    whose.emplace(out.path, key);
    total += use->disk_bytes;
    uses.push_back(std::move(*use));
  }
  // The owner's kept outputs are looked at one by one only past the total.
  if (limits_.per_owner > 0 && total > limits_.per_owner)
    for (const auto& key : owned.ended) {
      const Output& out = outputs_.at(key);
      if (planned.count(key) || !out.use || out.use->disk_bytes == 0) continue;
      whose.emplace(out.path, key);
      uses.push_back(*out.use);
    }
  std::uint64_t freed_now = 0;
  for (const auto& freeing : plan_log_freeing(uses, caps, block_)) {
    const std::string& key = whose.at(freeing.path);
    Output& out = outputs_.at(key);
    const std::string& run_id = out.run_id;
    const auto before = std::find_if(uses.begin(), uses.end(), [&](const LogUse& u) { return u.path == freeing.path; });
    FrontFreed freed;
    try {
      // Always a cut (run outputs are never removed: run.info names them).
      freed = free_log_range(freeing.path, freeing.from, freeing.keep_from);
    } catch (const std::system_error& e) {
      spdlog::warn("run {}: its output is over its cap but cannot be cut: {}", run_id, e.what());
      continue;
    }
    if (before != uses.end())
      freed_now += freed.truncated ? freed.bytes : (freed.bytes > before->kept_from ? freed.bytes - before->kept_from : 0);
    if (!out.live) {
      owned.ended_disk -= std::min(owned.ended_disk, out.use ? out.use->disk_bytes : 0);
      out.use = measure_log(out.path, caps.keep_head).value_or(LogUse{});
      out.use->current = true;
      owned.ended_disk += out.use->disk_bytes;
    }
    // The first cut of a run is worth a line in lpd's log; the next ones
    // only at debug level, or lpd's own log would grow with the output.
    spdlog::log(out.noted_once ? spdlog::level::debug : spdlog::level::warn,
                "run {}: output {} is over its cap (--run-output-max {} bytes, --run-outputs-per-user-max {} bytes "
                "for uid {}): {}",
                run_id, freeing.path, limits_.per_run, limits_.per_owner, owner,
                freed.truncated ? "emptied (its file system cannot free part of a file)" : "its middle freed");
    note_dropped(key);
  }
  // As the helper log cap: more freed in one window than a whole
  // cap holds: the command writes faster than one window allows; look sooner.
  const std::uint64_t smallest = std::min(limits_.per_run ? limits_.per_run : UINT64_MAX,
                                          limits_.per_owner ? limits_.per_owner : UINT64_MAX);
  if (freed_now > smallest) watch_.hurry();
}

void RunOutputCap::note_dropped(const std::string& key) {
  Output& out = outputs_.at(key);
  if (out.note_timer) return;  // one is due: it carries this change too
  const auto due = out.last_note + kNoteInterval;
  if (!out.noted_once || std::chrono::steady_clock::now() >= due) {
    send_note(key);
    return;
  }
  out.note_timer = std::make_unique<boost::asio::steady_timer>(io_);
  out.note_timer->expires_at(due);
  out.note_timer->async_wait([this, key](boost::system::error_code ec) {
    if (ec) return;  // cancelled: the cap (or this run's entry) is going away
    auto it = outputs_.find(key);
    if (it == outputs_.end()) return;
    it->second.note_timer.reset();
    send_note(key);
  });
}

void RunOutputCap::send_note(const std::string& key) {
  Output& out = outputs_.at(key);
  out.noted_once = true;
  out.last_note = std::chrono::steady_clock::now();
  auto parts = log_parts(out.path);  // as it is now, the latest cut included
  if (!parts || !on_dropped_) return;
  on_dropped_({out.run_id, out.stream, out.owner, *parts});
}

std::optional<std::string> run_output_excerpt(const std::string& path, std::size_t max_bytes) {
  const auto parts = log_parts(path);
  if (!parts) return std::nullopt;
  auto log = open_log_to_read(path);
  if (!log) return std::nullopt;
  // The newest output only: from the kept part after the freed middle (or
  // the whole file when nothing was freed), at most max_bytes of it.
  const std::uint64_t from = parts->dropped() > 0 ? parts->kept_from : 0;
  std::uint64_t start = parts->size - from > max_bytes ? parts->size - max_bytes : from;
  std::string text(parts->size - start, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::pread(log->fd.get(), text.data() + got, text.size() - got, static_cast<off_t>(start + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  if (start > 0) {
    // From the next whole line when there is one in what was read.
    if (const auto newline = text.find('\n'); newline != std::string::npos && newline + 1 < text.size()) {
      text.erase(0, newline + 1);
      start += newline + 1;
    }
  }
  const std::uint64_t dropped = parts->dropped();
  const std::string note = excerpt_note(start - std::min(start, dropped), dropped);
  // The note counts against max_bytes too: the newest output stays.
  if (note.size() + text.size() > max_bytes && text.size() > note.size()) text.erase(0, note.size());
  return note + text;
}

}  // namespace lpd::daemon
