#include "daemon/history/history.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <tuple>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "daemon/core/clock.h"
#include "daemon/os/remove_tree.h"
#include "daemon/core/unique_fd.h"
#include "protocol/error.h"

namespace lpd::daemon {
namespace {

constexpr auto kRetentionInterval = std::chrono::hours(1);
/// Events one read of the journal decodes at most, within a walk.
constexpr std::size_t kWalkPageEvents = 256;

}  // namespace

History::History(boost::asio::io_context& io, EventBus& events, const StateStore& store, RunRegistry& runs,
                 RetentionLimits limits, PruneWatcher* pruned, JournalLimits journal)
    : io_(io),
      events_(events),
      store_(store),
      runs_(runs),
      limits_(limits),
      pruned_(pruned),
      log_(store.path("events")),
      journal_(
          io, events, store, log_, [this](std::string_view run_id) { return forgotten(run_id); },
          [&] {
            journal.runless_window_seconds = limits.keep_days * 86400.0;
            return journal;
          }(),
          [this](const std::string& run_id) -> std::optional<RunJournal::RunOwner> {
            const Run* run = runs_.find(run_id);
            if (!run) return std::nullopt;
            return RunJournal::RunOwner{run->owner, run->active};
          },
          [this] { apply_limits_soon(); }),
      hourly_(io),
      first_compaction_(io),
      compaction_soon_(io) {
  limits_.keep_journal_bytes = journal.per_owner;
}

void History::open() {
  const std::uint64_t last_logged = log_.open();
  std::uint64_t recorded = 0;
  if (auto seq = store_.read_json("events/seq.json"); seq && seq->is_object()) {
    const auto next = seq->find("next_block");
    if (next != seq->end() && next->is_number_unsigned()) recorded = next->get<std::uint64_t>();
  }
  reservation_.emplace(SeqReservation::first_seq(recorded, last_logged));
  const std::uint64_t first = reservation_->limit();
  // Sized now, while there may be room: later records overwrite it in place.
  if (auto error = seq_record_.open(store_.path("events/seq.json"), first); !error.empty())
    spdlog::warn("cannot open the event seq record {}: {}", store_.path("events/seq.json"), error);
  events_.continue_seqs(first, [this](std::uint64_t seq) {
    const auto limit = reservation_->needs_record(seq);
    if (!limit) return reservation_->limit();
    // Not fsynced: it only has to outlive lpd (kill -9 included); after a
    // power loss the journal's own last seq still keeps seqs increasing.
    if (auto error = seq_record_.write(*limit); !error.empty()) {
      // Not recorded: tried again at the next event. Until it is, a
      // restart could hand out this block's seqs again.
      if (!seq_record_failing_)
        spdlog::error("cannot record the event seq reservation in {}: {}; a restart before it is written may "
                      "repeat seqs past {}",
                      store_.path("events/seq.json"), error, reservation_->limit());
      seq_record_failing_ = true;
      return reservation_->limit();
    }
    if (seq_record_failing_) spdlog::info("the event seq reservation is recorded again");
    seq_record_failing_ = false;
    reservation_->recorded(*limit);
    return *limit;
  });
  spdlog::info("events journal {}: last seq {}, going on from {}", log_.dir(), last_logged, first);
}

std::size_t History::restore_lost_batch() {
  // An events journal with no event to go by (removed, or an lpd from
  // before it) tells no lost batch from the whole history: copying every
  // run's journal into it would hold the start for minutes.
  if (log_.last_seq() == 0 || log_.last_time() <= 0) return 0;
  // A run that ended in the lost batch ended after the events journal's
  // last event: its ended_at is at least that event's time.
  const double since = log_.last_time() - 60;
  std::vector<std::pair<std::string, uid_t>> candidates;
  for (const Run* run : runs_.list(/*include_ended=*/true))
    if (run->active || run->ended_at >= since) candidates.emplace_back(run->run_id, run->owner);
  return journal_.restore_lost_batch(candidates);
}

void History::start() {
  compaction_deferred_ = true;  // retention's removals below are compacted with the first pass
  // By count and age now; by journal bytes once they are measured (one
  // lstat per run, 20 ms at 10,000 runs), with the first compaction, after
  // the first clients are answered. Until then only the journals of runs
  // written to since the start are counted (measured when they open).
  apply_limits();
  events_.subscribe([this](const Event& e) {
    if (e.type == "run.ended") apply_limits_soon();
  });
  arm_hourly();
  first_compaction_.expires_after(kFirstCompactionDelay);
  first_compaction_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    compaction_deferred_ = false;
    measure_journals();
    apply_limits();
    request_compaction();
  });
}

void History::stop() {
  stopped_ = true;
  hourly_.cancel();
  first_compaction_.cancel();
  compaction_soon_.cancel();
  journal_.flush();
  // A full disk (or EIO) at the very end: what it refused is lost with this
  // process. Said per run, so that whoever reads a report of these runs
  // ("never ran" for tests whose results were here) can know why.
  const auto left = journal_.unwritten();
  for (const auto& [run_id, bytes] : left.runs)
    spdlog::error("lpd stops with {} bytes of run {}'s journal unwritten (the state directory {} refuses writes): "
                  "those events and results are lost; its report lacks them",
                  bytes, run_id, store_.root());
  if (left.events > 0)
    spdlog::error("lpd stops with {} bytes of the events journal unwritten (the state directory {} refuses "
                  "writes): those events are lost",
                  left.events, store_.root());
}

void History::apply_limits_soon() {
  if (prune_posted_ || stopped_) return;
  // Not inside publish: whoever published holds the run.
  prune_posted_ = true;
  boost::asio::post(io_, [this] {
    prune_posted_ = false;
    if (!stopped_) apply_limits();
  });
}

void History::measure_journals() {
  if (limits_.keep_journal_bytes == 0 && journal_.quota().limits().per_run == 0) return;
  UniqueFd runs_dir(::open(store_.path("runs").c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!runs_dir) return;
  for (const Run* run : runs_.list(true)) {
    if (!is_safe_id(run->run_id)) continue;
    struct stat st {};
    const std::string name = run->run_id + "/events.jsonl";
    // A link or anything but a file counts as nothing (lpd never follows one).
    if (::fstatat(runs_dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    journal_.measured(run->run_id, run->owner, static_cast<std::uint64_t>(st.st_size), run->active);
  }
}

void History::arm_hourly() {
  hourly_.expires_after(kRetentionInterval);
  hourly_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    apply_limits();
    request_compaction();  // run-less events age out by keep_days
    arm_hourly();
  });
}

History::Walk History::walk(std::uint64_t after, std::size_t max_scan_bytes,
                            const std::function<bool(const Event&)>& visit, const EventFilter* filter) {
  Walk w;
  w.last = after;
  const auto& memory = events_.history();
  // A run no longer known is one removed (retention, prune) whose events
  // the journal may still hold until compaction drops them: also after a
  // restart, which forgets what was removed before it (a pruned run's
  // events came back to `lpctl events` until the first compaction).
  auto run_kept = [this](const std::string& run_id) { return !forgotten(run_id) && runs_.find(run_id) != nullptr; };
  auto kept = [&run_kept](const Event& e) { return e.run_id.empty() || run_kept(e.run_id); };
  // A segment of removed runs' events only, not compacted yet.
  auto dead_segment = [&run_kept](const EventLog::Summary& summary) {
    return summary.oldest_runless == std::numeric_limits<double>::infinity() &&
           std::none_of(summary.run_ids.begin(), summary.run_ids.end(), run_kept);
  };
  // The journal first, for what memory no longer holds.
  std::size_t scanned = 0;
  std::function<bool(const LineHead&)> wanted;
  if (filter && (!filter->run_id.empty() || !filter->prefixes.empty()))  // one that can reject a line
    wanted = [filter](const LineHead& head) { return filter->matches(head.run_id, head.type); };
  while (memory.empty() || w.last + 1 < memory.front().seq) {
    if (scanned >= max_scan_bytes) return w;
    auto page = log_.read(w.last, kWalkPageEvents, max_scan_bytes - scanned, kept, wanted, dead_segment);
    scanned += page.bytes;
    for (const auto& e : page.events) {
      if (!memory.empty() && e.seq >= memory.front().seq) break;  // memory has it from here
      if (!visit(e)) return w;
      w.last = e.seq;
    }
    std::uint64_t scanned_to = page.last_scanned;
    if (!memory.empty()) scanned_to = std::min(scanned_to, memory.front().seq - 1);
    w.last = std::max(w.last, scanned_to);
    if (page.exhausted) break;
  }
  // Then memory, from the first event past the cursor (its seqs are consecutive).
  auto it = memory.begin();
  if (!memory.empty() && w.last >= memory.front().seq) {
    const std::uint64_t skip = w.last + 1 - memory.front().seq;
    it = skip >= memory.size() ? memory.end() : memory.begin() + static_cast<std::ptrdiff_t>(skip);
  }
  for (; it != memory.end(); ++it) {
    if (kept(*it) && !visit(*it)) return w;
    w.last = it->seq;
  }
  w.exhausted = true;
  return w;
}

std::vector<std::string> History::select(const RetentionLimits& limits, double now,
                                         const std::function<bool(const Run&)>& may_prune) const {
  std::vector<RunAge> ages;
  for (const Run* run : runs_.list(true)) {
    if (!may_prune(*run)) continue;
    ages.push_back({run->run_id, run->created_at, run->ended_at, run->active, run->owner,
                    journal_.quota().run_bytes(run->run_id)});
  }
  return runs_to_prune(std::move(ages), now, limits);
}

json History::remove_runs(const std::vector<std::string>& ids, bool dry_run) {
  json report = json::array();
  std::vector<std::string> removable;
  for (const auto& id : ids) {
    const Run* run = runs_.find(id);
    if (!run || run->active) continue;  // never an active run, whatever asked
    removable.push_back(id);
  }
  if (!dry_run && !removable.empty() && pruned_) {
    // Their crash records go first (a compaction of crashes.jsonl), then
    // their directories: lpd killed in between leaves old runs that the
    // next retention removes again, never crash records of runs that are
    // gone.
    pruned_->runs_pruned(std::set<std::string>(removable.begin(), removable.end()));
  }
  UniqueFd runs_dir;
  if (!dry_run)
    runs_dir.reset(::open(store_.path("runs").c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  for (const auto& id : removable) {
    const Run* run = runs_.find(id);
    json line = {{"run_id", id}, {"owner_uid", run->owner}, {"created_at", run->created_at},
                 {"ended_at", run->ended_at}};
    if (!dry_run) {
      runs_.erase(id);
      forgotten_[id] = events_.last_seq();
      journal_.removed(id);
      if (!is_safe_id(id)) {
        line["error"] = "not a valid run id; directory left alone";
      } else if (!runs_dir) {
        line["error"] = "cannot open " + store_.path("runs");
      } else if (auto error = remove_tree_at(runs_dir.get(), id); !error.empty()) {
        line["error"] = error;
        spdlog::warn("retention: run {}: {}", id, error);
      }
    }
    report.push_back(std::move(line));
  }
  if (!dry_run && !removable.empty()) {
    spdlog::info("retention: removed {} run(s)", removable.size());
    request_compaction_soon();
  }
  return report;
}

void History::apply_limits() {
  const auto ids = select(limits_, wall_now(), [](const Run&) { return true; });
  if (!ids.empty()) remove_runs(ids, /*dry_run=*/false);
}

History::Pruned History::prune(const PruneRequest& request, const std::function<bool(const Run&)>& may_prune) {
  Pruned pruned;
  pruned.limits = limits_;
  if (request.keep_runs) pruned.limits.keep_runs = *request.keep_runs;
  if (request.keep_days) pruned.limits.keep_days = *request.keep_days;
  std::vector<std::string> ids;
  if (request.all) {
    std::vector<const Run*> ended;
    for (const Run* run : runs_.list(true))
      if (!run->active && may_prune(*run)) ended.push_back(run);
    std::sort(ended.begin(), ended.end(), [](const Run* a, const Run* b) {
      return std::tie(a->created_at, a->run_id) < std::tie(b->created_at, b->run_id);
    });
    for (const Run* run : ended) ids.push_back(run->run_id);
  } else {
    ids = select(pruned.limits, wall_now(), may_prune);
  }
  ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(std::min(request.skip, ids.size())));
  pruned.more = ids.size() > kMaxPrunedPerCall;
  if (pruned.more) ids.resize(kMaxPrunedPerCall);
  for (auto& line : remove_runs(ids, request.dry_run)) pruned.runs.push_back(std::move(line));
  return pruned;
}

void History::request_compaction() {
  if (compaction_deferred_) return;  // the first pass, soon, covers it
  if (compacting_) {
    compact_again_ = true;
    return;
  }
  compacting_ = true;
  compact_again_ = false;
  compact_cursor_ = 0;
  compact_started_at_seq_ = events_.last_seq();
  boost::asio::post(io_, [this] { compact_step(); });
}

void History::request_compaction_soon() {
  if (compaction_soon_armed_ || stopped_) return;
  compaction_soon_armed_ = true;
  compaction_soon_.expires_after(kCompactionAfterRemoval);
  compaction_soon_.async_wait([this](boost::system::error_code ec) {
    compaction_soon_armed_ = false;
    if (ec || stopped_) return;
    request_compaction();
  });
}

void History::compact_step() {
  if (stopped_) return;
  const double cutoff = limits_.keep_days > 0 ? wall_now() - limits_.keep_days * 86400.0 : 0;
  auto dead = [this, cutoff](std::string_view run_id, double time) {
    if (run_id.empty()) return cutoff > 0 && time < cutoff;
    return forgotten(run_id) || runs_.find(run_id) == nullptr;
  };
  auto may_hold_dead = [this, cutoff](const EventLog::Summary& summary) {
    if (summary.oldest_runless < cutoff) return true;
    for (const auto& run_id : summary.run_ids)
      if (forgotten(run_id) || runs_.find(run_id) == nullptr) return true;
    return false;
  };
  // One segment per turn of the event loop: clients are served in between;
  // a segment read once is only read again when a run of it was removed.
  if (log_.compact_one(compact_cursor_, dead, may_hold_dead)) {
    boost::asio::post(io_, [this] { compact_step(); });
    return;
  }
  // The pass is over: the journal holds no event of a run removed before it
  // began. Forget those runs once memory no longer holds their events either.
  const auto& memory = events_.history();
  const std::uint64_t oldest_in_memory = memory.empty() ? events_.last_seq() + 1 : memory.front().seq;
  for (auto it = forgotten_.begin(); it != forgotten_.end();) {
    if (it->second <= compact_started_at_seq_ && it->second < oldest_in_memory)
      it = forgotten_.erase(it);
    else
      ++it;
  }
  compacting_ = false;
  if (compact_again_) request_compaction();
}

}  // namespace lpd::daemon
