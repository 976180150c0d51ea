#include "daemon/crashes/crash_store.h"

#include "daemon/crashes/bounded_traceback.h"
#include "daemon/crashes/crash_rules.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <spdlog/spdlog.h>

#include "daemon/core/directory_trust.h"
#include "daemon/core/unique_fd.h"
#include "daemon/core/untrusted_file.h"
#include "protocol/flat_message.h"
#include "protocol/line_reader.h"
#include "daemon/core/write_all.h"

namespace lpd::daemon {

using nlohmann::json;

namespace {

/// Whether every field of a stored crash line that Crash knows has the JSON
/// type Crash writes (numbers of any kind count as numbers): a line with a
/// string for a pid is damaged, not a crash of pid 0.
bool same_shape(const json& stored, const json& rebuilt) {
  auto kind = [](const json& v) {
    return v.is_number() ? json::value_t::number_integer : v.type();
  };
  for (const auto& [key, value] : stored.items()) {
    const auto it = rebuilt.find(key);
    if (it == rebuilt.end() || value.is_null()) continue;
    if (kind(value) != kind(*it)) return false;
  }
  return true;
}

/// The highest crash_id ever given, kept beside the journal: a compaction
/// may drop the newest records, and ids must never be given twice.
constexpr std::string_view kHighWaterFile = "crashes.json";
constexpr std::uint64_t kMaxCrashId = std::uint64_t{1} << 53;

/// One line of crashes.jsonl as the JSON parser reads it (discarded when
/// not JSON). A record is a flat object: protocol::parse_flat_object reads
/// it in one pass over its bytes, where the parser's lexer took each of
/// 10,000 records' 4 KiB traceback a character at a time (a third of lpd's
/// start-up with that history); any other line goes to the parser.
json record_json(const std::string& line) {
  auto members = protocol::parse_flat_object(line);
  if (!members) return json::parse(line, nullptr, false);
  json value = json::object();
  for (auto& [name, member] : *members)
    value[name] = member.kind == protocol::FlatValue::Kind::kString ? json(std::move(member.text)) : member.to_json();
  return value;
}

std::string crash_line_of(const Crash& crash) {
  std::string line = crash.to_json().dump(-1, ' ', false, json::error_handler_t::replace);
  line.push_back('\n');
  return line;
}


}  // namespace

std::string crash_line(Crash& crash, std::size_t max_bytes) {
  constexpr std::string_view kCut = "\n[lpd: cut here, the crash record was too large to keep whole]";
  std::string line = crash_line_of(crash);
  // The traceback is the bulk of any record; a reason or nodeid this large
  // only comes from a hostile shim.
  for (std::string* field : {&crash.traceback, &crash.reason, &crash.nodeid, &crash.phase, &crash.worker_id,
                             &crash.where}) {
    while (line.size() > max_bytes && field->size() > kCut.size()) {
      // Every byte of text is at least one byte encoded, so dropping the
      // excess (and room for the mark) fits unless escaping grew the rest.
      const std::size_t drop = line.size() - max_bytes + kCut.size() + 8;
      const std::size_t keep = field->size() > drop ? field->size() - drop : 0;
      *field = field->substr(0, keep) + std::string(kCut);
      line = crash_line_of(crash);
    }
  }
  return line;
}

CrashStore::CrashStore(const StateStore& store, FlushWatcher* flushes) : store_(store), flushes_(flushes) {}

std::string CrashStore::path() const { return store_.path(kJournal); }

void CrashStore::recount(uid_t owner, std::size_t was, std::size_t now) {
  auto& used = owner_bytes_[owner];
  used = used - std::min(used, was) + now;
  if (used == 0) owner_bytes_.erase(owner);
}

void CrashStore::index(Crash crash, std::size_t bytes) {
  const std::uint64_t id = crash.crash_id;
  by_run_[crash.run_id].push_back(id);  // ids only grow: each run's list stays sorted
  by_key_.emplace(key_of(crash), id);   // a duplicate an older lpd wrote keeps the first
  recount(crash.owner, 0, bytes);
  records_.emplace(id, Entry{std::move(crash), bytes});
}

CrashStore::LoadReport CrashStore::load() {
  LoadReport report;
  std::uint64_t high_water = 0;
  if (auto mark = store_.read_json(kHighWaterFile); mark && mark->is_object()) {
    if (auto it = mark->find("last_crash_id"); it != mark->end() && it->is_number_unsigned())
      high_water = it->get<std::uint64_t>();
  }
  last_id_ = 0;
  UniqueFd fd;
  try {
    fd = open_untrusted(path());
  } catch (const std::system_error& e) {
    if (e.code().value() != ENOENT) spdlog::error("cannot read {}: {}; starting with no crash records", path(), e.what());
    last_id_ = high_water;
    return report;
  }
  auto take = [&](const std::string& line) {
    if (line.empty()) return;
    auto value = record_json(line);
    if (value.is_discarded() || !value.is_object()) {
      ++report.unreadable_lines;
      return;
    }
    Crash crash = Crash::from_json(value);  // never throws: mistyped fields read as absent
    if (!same_shape(value, crash.to_json())) {  // a field of the wrong type: a damaged line
      ++report.unreadable_lines;
      return;
    }
    // Records from before crash_id (or out of order) are numbered after
    // the last one seen: the same numbers at every start, and always
    // increasing, which paging relies on.
    // (Past 2^53 a JSON client could not tell ids apart.)
    if (crash.crash_id <= last_id_ || crash.crash_id > kMaxCrashId) {
      ++report.renumbered;
      crash.crash_id = last_id_ + 1;
    }
    last_id_ = crash.crash_id;
    ++report.records;
    index(std::move(crash), line.size() + 1);
  };
  protocol::LineReader reader(kMaxRecordBytes);
  std::vector<char> chunk(1024 * 1024);
  char last_byte = '\n';
  for (;;) {
    const ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      spdlog::error("cannot read {}: {}; keeping the {} crash record(s) read so far", path(), std::strerror(errno),
                    report.records);
      break;
    }
    if (n == 0) break;
    last_byte = chunk[static_cast<std::size_t>(n) - 1];
    reader.feed(std::string_view(chunk.data(), static_cast<std::size_t>(n)));
    for (;;) {
      auto next = reader.next();
      if (next.status == protocol::LineReader::Status::kNeedMore) break;
      if (next.status == protocol::LineReader::Status::kOversized)
        ++report.oversized_lines;
      else
        take(next.line);
    }
  }
  last_id_ = std::max(last_id_, high_water);
  if (last_byte != '\n') {
    // lpd died (or the disk filled) in the middle of a line: what is there
    // is not a record. The next append starts on a line of its own.
    report.torn_tail = torn_tail_ = true;
    reader.take_buffered();
  }
  if (report.unreadable_lines || report.oversized_lines || report.torn_tail)
    spdlog::warn("{}: skipped {} unreadable line(s), {} line(s) over {} bytes{}", path(), report.unreadable_lines,
                 report.oversized_lines, kMaxRecordBytes, report.torn_tail ? " and a torn last line" : "");
  load_flaky_marks();
  return report;
}

void CrashStore::load_flaky_marks() {
  const std::string file = store_.path(kFlakyMarks);
  // Each line is about 20 bytes: a file past this bound was not written by lpd.
  constexpr std::size_t kMaxBytes = kMaxFlakyMarks * 32;
  const auto text = read_untrusted_file(file, kMaxBytes);
  if (!text) {
    if (::access(file.c_str(), F_OK) == 0)
      spdlog::warn("{}: not a regular file lpd can read, or over {} bytes: flaky marks in it are not applied", file,
                   kMaxBytes);
    return;
  }
  std::size_t skipped = 0;
  std::string_view rest = *text;
  while (!rest.empty()) {
    const auto newline = rest.find('\n');
    if (newline == std::string_view::npos) {
      marks_torn_ = true;  // lpd died mid-line: not a mark
      break;
    }
    const std::string_view line = rest.substr(0, newline);
    rest.remove_prefix(newline + 1);
    ++marks_;
    const auto value = json::parse(line, nullptr, false);
    const auto id = value.is_object() ? value.find("crash_id") : value.end();
    if (!value.is_object() || id == value.end() || !id->is_number_unsigned()) {
      ++skipped;
      continue;
    }
    auto record = records_.find(id->get<std::uint64_t>());
    if (record == records_.end()) continue;  // removed since (a rewrite died before emptying this file)
    record->second.crash.flaky = true;
    record->second.bytes = crash_line_of(record->second.crash).size();
  }
  if (skipped || marks_torn_)
    spdlog::warn("{}: skipped {} unreadable line(s){}", file, skipped, marks_torn_ ? " and a torn last line" : "");
}

const Crash* CrashStore::find(std::uint64_t crash_id) const {
  auto it = records_.find(crash_id);
  return it == records_.end() ? nullptr : &it->second.crash;
}

const Crash* CrashStore::find_same(const Crash& crash) const {
  auto it = by_key_.find(key_of(crash));
  return it == by_key_.end() ? nullptr : find(it->second);
}

namespace {

/// "64 MiB", or the bytes for a budget of less than a MiB (tests).
std::string mib(std::size_t bytes) {
  return bytes >= (1u << 20) ? std::to_string(bytes >> 20) + " MiB" : std::to_string(bytes) + " bytes";
}

}  // namespace

const Crash& CrashStore::append(Crash crash) {
  if (const Crash* same = find_same(crash)) return *same;
  crash.crash_id = last_id_ + 1;  // its digits count in its line's size
  std::size_t bytes = crash_line(crash, kMaxRecordBytes).size();
  const auto used_it = owner_bytes_.find(crash.owner);
  const std::size_t used = used_it == owner_bytes_.end() ? 0 : used_it->second;
  if (used + bytes > owner_budget.cut_from) {
    const std::string budget = mib(owner_budget.cut_from);
    if (crash.traceback.size() > kBudgetTracebackBytes)
      crash.traceback = "[lpd: the start of this traceback was not kept: this user's crash records are past the " +
                        budget + " lpd keeps per user (lpctl prune removes old runs); its last " +
                        std::to_string(kBudgetTracebackBytes) + " bytes follow]\n" +
                        std::string(traceback_end(crash.traceback, kBudgetTracebackBytes));
    if (crash.reason.size() > kBudgetReasonBytes)
      crash.reason = crash.reason.substr(0, kBudgetReasonBytes) + " [lpd: the rest was not kept: this user's crash "
                                                                  "records are past the " + budget + " per user]";
    bytes = crash_line(crash, kMaxRecordBytes).size();
  }
  if (used + bytes > owner_budget.refuse_from) {
    spdlog::warn("run {}: crash of pid {} not kept: uid {}'s crash records hold {} bytes, past {} (test {})",
                 crash.run_id, crash.pid, crash.owner, used, mib(owner_budget.refuse_from),
                 crash.nodeid.substr(0, 200));
    crash = crash_not_kept_marker(crash, mib(owner_budget.refuse_from));
    if (const Crash* same = find_same(crash)) return *same;
    crash.crash_id = last_id_ + 1;
    bytes = crash_line(crash, kMaxRecordBytes).size();
  }
  const std::uint64_t id = last_id_ = crash.crash_id;
  index(std::move(crash), bytes);
  unwritten_.push_back(id);
  flush();
  return records_.at(id).crash;
}

std::vector<const Crash*> CrashStore::of_run(std::string_view run_id) const {
  std::vector<const Crash*> out;
  auto it = by_run_.find(run_id);
  if (it == by_run_.end()) return out;
  out.reserve(it->second.size());
  for (std::uint64_t id : it->second) out.push_back(&records_.at(id).crash);
  return out;
}

bool CrashStore::mark_flaky(std::uint64_t crash_id) {
  auto it = records_.find(crash_id);
  if (it == records_.end()) return false;
  if (it->second.crash.flaky) return true;
  it->second.crash.flaky = true;
  const std::size_t before = it->second.bytes;
  it->second.bytes = crash_line_of(it->second.crash).size();
  recount(it->second.crash.owner, before, it->second.bytes);
  // A line in the side file, not a rewrite of the journal on the event loop
  // (hundreds of milliseconds at tens of MB); a rewrite only once the marks
  // pile up.
  if (marks_ + unwritten_marks_.size() >= kMaxFlakyMarks)
    rewrite_needed_ = true;
  else
    unwritten_marks_.push_back(crash_id);
  flush();
  return true;
}

bool crash_compaction_due(std::size_t dead_bytes, std::size_t live_bytes, std::chrono::seconds since_last) {
  if (dead_bytes == 0) return false;
  return dead_bytes * 2 >= live_bytes || live_bytes <= (std::size_t{1} << 20) || since_last >= std::chrono::hours(1);
}

std::vector<std::string> CrashStore::run_ids() const {
  std::vector<std::string> out;
  out.reserve(by_run_.size());
  for (const auto& [run_id, _] : by_run_) out.push_back(run_id);
  return out;
}

void CrashStore::forget_runs(const std::set<std::string>& run_ids) {
  bool removed = false;
  for (const auto& run_id : run_ids) {
    auto run = by_run_.find(run_id);
    if (run == by_run_.end()) continue;
    for (std::uint64_t id : run->second) {
      auto record = records_.find(id);
      if (record == records_.end()) continue;
      auto key = by_key_.find(key_of(record->second.crash));
      if (key != by_key_.end() && key->second == id) by_key_.erase(key);
      recount(record->second.crash.owner, record->second.bytes, 0);
      // A record still queued never reached the file: nothing to compact.
      if (std::erase(unwritten_, id) == 0) dead_bytes_ += record->second.bytes;
      records_.erase(record);
      removed = true;
    }
    by_run_.erase(run);
  }
  if (!removed) return;
  std::size_t live = 0;
  for (const auto& [_, bytes] : owner_bytes_) live += bytes;
  const auto since = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - compacted_at_);
  if (crash_compaction_due(dead_bytes_, live, since)) rewrite_needed_ = true;
  flush();
}

CrashStore::Page CrashStore::page(std::uint64_t after, std::size_t limit, std::string_view run_id,
                                  std::size_t max_bytes) const {
  Page page;
  std::size_t bytes = 0;
  // Takes one record; false when the page is full and `id` is left for the next.
  auto add = [&](std::uint64_t id) {
    const Entry& entry = records_.at(id);
    if (page.crashes.size() >= limit || (!page.crashes.empty() && bytes + entry.bytes > max_bytes)) {
      page.next = page.crashes.empty() ? after : page.crashes.back()->crash_id;
      return false;
    }
    bytes += entry.bytes;
    page.crashes.push_back(&entry.crash);
    return true;
  };
  if (run_id.empty()) {
    for (auto it = records_.upper_bound(after); it != records_.end(); ++it)
      if (!add(it->first)) break;
  } else if (auto run = by_run_.find(run_id); run != by_run_.end()) {
    const auto& ids = run->second;
    for (auto it = std::upper_bound(ids.begin(), ids.end(), after); it != ids.end(); ++it)
      if (!add(*it)) break;
  }
  return page;
}

bool CrashStore::flush() {
  const std::size_t records = unwritten_.size();
  const std::size_t marks = unwritten_marks_.size();
  if (rewrite_needed_) {
    // It writes everything kept, the queued appends too.
    const bool written = rewrite();
    note_flush(written, records, true);
    return written;
  }
  if (unwritten_.empty() && unwritten_marks_.empty()) return true;
  bool written = true;
  if (!unwritten_.empty()) {
    std::string lines = torn_tail_ ? "\n" : "";
    for (std::uint64_t id : unwritten_) lines += crash_line(records_.at(id).crash, kMaxRecordBytes);
    written = append_lines(path(), lines, torn_tail_);
    if (written) {
      unwritten_.clear();
      torn_tail_ = false;
    }
  }
  // A mark goes after its record: a mark of a record not yet written would
  // name nothing at the next start.
  if (written && !unwritten_marks_.empty()) {
    std::string lines = marks_torn_ ? "\n" : "";
    for (std::uint64_t id : unwritten_marks_) lines += "{\"crash_id\":" + std::to_string(id) + "}\n";
    written = append_lines(store_.path(kFlakyMarks), lines, marks_torn_);
    if (written) {
      marks_ += unwritten_marks_.size();
      unwritten_marks_.clear();
      marks_torn_ = false;
    }
  }
  note_flush(written, records, false, marks);
  return written;
}

void CrashStore::note_flush(bool written, std::size_t records, bool rewrite, std::size_t marks) {
  std::string what = records == 0 ? (rewrite ? "a compaction of the crash records" : "")
                                  : std::to_string(records) + " crash record(s)";
  if (records != 0 && rewrite) what += " and a compaction";
  if (marks != 0 && !rewrite) what += (what.empty() ? "" : " and ") + std::to_string(marks) + " flaky mark(s)";
  if (!written && !waiting_) {
    // Once per outage: a full disk must not flood the log at every retry.
    spdlog::warn("{} kept in memory, not yet in {}: {}; lpd writes them as soon as it can (retrying, and at every "
                 "new crash)",
                 what, path(), cause_);
  } else if (!written) {
    spdlog::debug("still cannot write {} ({} waiting): {}", path(), what, cause_);
  } else if (waiting_) {
    spdlog::info("wrote {} kept in memory to {}", what, path());
  }
  waiting_ = !written;
  if (written) cause_.clear();
  if (flushes_) flushes_->flushed(written);
}

std::vector<const Crash*> CrashStore::unwritten_records() const {
  std::vector<const Crash*> out;
  out.reserve(unwritten_.size());
  for (std::uint64_t id : unwritten_) out.push_back(&records_.at(id).crash);
  return out;
}

bool CrashStore::append_lines(const std::string& file, const std::string& lines, bool& torn) {
  try {
    make_directories(store_.root(), 0711);
  } catch (const std::system_error& e) {
    cause_ = e.what();
    return false;
  }
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    cause_ = "cannot open " + file + ": " + (fd ? "not a regular file" : std::strerror(errno));
    return false;
  }
  int error = fail_write_for_test ? fail_write_for_test(lines) : 0;
  if (error == 0) error = write_all(fd.get(), lines);
  // The lines are in the file (readers see them) once written; their fsync
  // may wait for the end of a burst (FlushWatcher::sync_later).
  if (error == 0 && !sync_owed_ && flushes_ && flushes_->sync_later([this] { sync_now(); })) sync_owed_ = true;
  if (error == 0 && !sync_owed_ && ::fsync(fd.get()) != 0) error = errno;
  if (error != 0) {
    // Take back what part of the lines made it: a retry writes them whole.
    if (::ftruncate(fd.get(), st.st_size) != 0) torn = true;
    cause_ = "cannot write " + file + ": " + std::strerror(error);
    return false;
  }
  return true;
}

void CrashStore::sync_now() {
  if (!sync_owed_) return;
  sync_owed_ = false;
  for (const std::string& file : {path(), store_.path(kFlakyMarks)}) {
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd) continue;  // never appended to, or gone (a rewrite renamed over it: that one was synced)
    if (::fsync(fd.get()) != 0)
      spdlog::error("cannot sync {}: {}; crash records written there may not survive a power loss", file,
                    std::strerror(errno));
  }
}

bool CrashStore::rewrite() {
  const std::string file = path();
  const std::string temp = file + ".new";
  int error = 0;
  {
    UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) error = errno;
    std::string buffer;
    auto write_buffer = [&] {
      if (error == 0 && fail_write_for_test) error = fail_write_for_test(buffer);
      if (error == 0) error = write_all(fd.get(), buffer);
      buffer.clear();
    };
    for (auto& [id, entry] : records_) {
      if (error != 0) break;
      std::string line = crash_line(entry.crash, kMaxRecordBytes);
      entry.bytes = line.size();
      buffer += line;
      if (buffer.size() >= 1024 * 1024) write_buffer();
    }
    if (error == 0) write_buffer();
    if (error == 0 && ::fsync(fd.get()) != 0) error = errno;
  }
  if (error == 0) {
    try {
      // Before the rename: the ids of records about to disappear stay given.
      store_.write_json(kHighWaterFile, {{"last_crash_id", last_id_}});
    } catch (const std::system_error& e) {
      error = e.code().value();
    }
  }
  if (error == 0 && ::rename(temp.c_str(), file.c_str()) != 0) error = errno;
  if (error != 0) {
    ::unlink(temp.c_str());
    rewrite_needed_ = true;
    cause_ = "cannot rewrite " + file + ": " + std::strerror(error);
    return false;
  }
  unwritten_.clear();
  rewrite_needed_ = false;
  dead_bytes_ = 0;
  compacted_at_ = std::chrono::steady_clock::now();
  torn_tail_ = false;
  // The journal holds every flag now: the marks are folded in. Should this
  // fail, the marks left name records already flagged (or gone): harmless.
  if (::unlink(store_.path(kFlakyMarks).c_str()) != 0 && errno != ENOENT)
    spdlog::warn("cannot remove {}: {}", store_.path(kFlakyMarks), std::strerror(errno));
  marks_ = 0;
  unwritten_marks_.clear();
  marks_torn_ = false;
  return true;
}

}  // namespace lpd::daemon
