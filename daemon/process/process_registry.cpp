#include "daemon/process/process_registry.h"

#include <array>

namespace lpd::daemon {
namespace {

using S = ProcState;
using E = ProcEvent;
using A = ProcAction;

constexpr std::array<Transition, 10> kLifecycle{{
    // from        event               to           action
    {S::kStarting, E::kMatched,        S::kReady,    A::kAnswerReady},
    {S::kStarting, E::kExited,         S::kExited,   A::kFailStart},  // reported at exit, not at the timeout
    {S::kStarting, E::kTimedOut,       S::kStopping, A::kFailStartAndKill},
    {S::kStarting, E::kTimedOutKept,   S::kStarting, A::kFailStart},  // keeps running, keeps watching
    {S::kStarting, E::kLineLimit,      S::kStopping, A::kFailStartAndKill},
    {S::kStarting, E::kKillRequested,  S::kStopping, A::kFailStartAndKill},
    {S::kReady,    E::kExited,         S::kExited,   A::kRecordEnd},
    {S::kReady,    E::kKillRequested,  S::kStopping, A::kKill},
    {S::kStopping, E::kExited,         S::kKilled,   A::kRecordEnd},
    {S::kStopping, E::kKillRequested,  S::kStopping, A::kNone},      // joins the kill in progress
}};

constexpr std::array<std::pair<ProcState, std::string_view>, 6> kStateNames{{
    {S::kStarting, "starting"},
    {S::kReady, "ready"},
    {S::kStopping, "stopping"},
    {S::kExited, "exited"},
    {S::kKilled, "killed"},
    {S::kLost, "lost"},
}};

}  // namespace

std::string_view to_string(ProcState state) {
  for (const auto& [s, name] : kStateNames)
    if (s == state) return name;
  return "unknown";
}

std::optional<ProcState> proc_state_from_string(std::string_view name) {
  for (const auto& [s, n] : kStateNames)
    if (n == name) return s;
  return std::nullopt;
}

bool is_running(ProcState state) {
  return state == S::kStarting || state == S::kReady || state == S::kStopping;
}

std::string_view to_string(ProcEvent event) {
  switch (event) {
    case E::kMatched: return "matched";
    case E::kExited: return "exited";
    case E::kTimedOut: return "timed_out";
    case E::kTimedOutKept: return "timed_out_kept";
    case E::kLineLimit: return "line_limit";
    case E::kKillRequested: return "kill_requested";
  }
  return "unknown";
}

std::span<const Transition> lifecycle() { return kLifecycle; }

std::optional<Transition> lifecycle_step(ProcState from, ProcEvent event) {
  for (const auto& t : kLifecycle)
    if (t.from == from && t.event == event) return t;
  return std::nullopt;
}

ProcessRegistry::Entry* ProcessRegistry::entry(std::string_view name) {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

const ProcessRegistry::Entry* ProcessRegistry::entry(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

const SupervisedProcess* ProcessRegistry::find(std::string_view name) const {
  const Entry* e = entry(name);
  return e ? &e->record : nullptr;
}

SupervisedProcess* ProcessRegistry::mutable_record(std::string_view name) {
  Entry* e = entry(name);
  return e ? &e->record : nullptr;
}

std::vector<const SupervisedProcess*> ProcessRegistry::all() const {
  std::vector<const SupervisedProcess*> out;
  out.reserve(entries_.size());
  for (const auto& [_, e] : entries_) out.push_back(&e.record);
  return out;
}

EnsurePlan ProcessRegistry::plan_ensure(std::string_view name, bool restart) const {
  const Entry* e = entry(name);
  if (!e) return EnsurePlan::kStart;
  switch (e->record.state) {
    case S::kStarting:
      return EnsurePlan::kJoin;
    case S::kStopping:
      return EnsurePlan::kStopThenStart;
    case S::kReady:
      // Constant time whatever the log size: one read of /proc/PID/stat.
      // Only a confirmed end starts another; kUnknown (lpd could not look)
      // leaves it to the exit watch, rather than run the server twice.
      if (const auto liveness = liveness_(e->record.pid, e->record.start_time);
          liveness == Liveness::kGone || liveness == Liveness::kReused)
        return EnsurePlan::kStart;
      return restart ? EnsurePlan::kStopThenStart : EnsurePlan::kReuse;
    case S::kExited:
    case S::kKilled:
    case S::kLost:
      return EnsurePlan::kStart;
  }
  return EnsurePlan::kStart;
}

std::uint64_t ProcessRegistry::begin(SupervisedProcess record) {
  record.generation = next_generation_++;
  record.state = S::kStarting;
  const std::string name = record.name;
  Entry* e = entry(name);
  if (!e) e = &entries_.emplace(name, Entry{}).first->second;
  e->record = std::move(record);
  return e->record.generation;
}

void ProcessRegistry::restore(SupervisedProcess record) {
  record.generation = next_generation_++;
  const std::string name = record.name;
  entries_[name] = Entry{std::move(record), {}};
}

void ProcessRegistry::erase(std::string_view name) {
  auto it = entries_.find(name);
  if (it != entries_.end()) entries_.erase(it);
}

void ProcessRegistry::add_waiter(std::string_view name, Waiter waiter) {
  if (Entry* e = entry(name)) e->waiters.push_back(std::move(waiter));
}

std::size_t ProcessRegistry::waiters(std::string_view name) const {
  const Entry* e = entry(name);
  return e ? e->waiters.size() : 0;
}

void ProcessRegistry::fail_waiters(std::string_view name, const StartFailure& failure) {
  Entry* e = entry(name);
  if (!e) return;
  auto waiters = std::move(e->waiters);
  e->waiters.clear();
  const SupervisedProcess snapshot = e->record;
  for (auto& waiter : waiters) waiter(snapshot, &failure);
}

std::optional<Transition> ProcessRegistry::fire(std::string_view name, std::uint64_t generation, ProcEvent event,
                                                const StartFailure* failure) {
  Entry* e = entry(name);
  if (!e || e->record.generation != generation) return std::nullopt;
  const auto step = lifecycle_step(e->record.state, event);
  if (!step) return std::nullopt;
  e->record.state = step->to;
  if (step->action == A::kAnswerReady || step->action == A::kFailStart || step->action == A::kFailStartAndKill) {
    // Waiters may call back into the registry (a new ensure): hand them a
    // snapshot and an emptied list.
    auto waiters = std::move(e->waiters);
    e->waiters.clear();
    const SupervisedProcess snapshot = e->record;
    static const StartFailure kUnexplained{protocol::ErrorCode::kInternal, "the start failed"};
    const StartFailure* why = step->action == A::kAnswerReady ? nullptr : (failure ? failure : &kUnexplained);
    for (auto& waiter : waiters) waiter(snapshot, why);
  }
  return step;
}

}  // namespace lpd::daemon
