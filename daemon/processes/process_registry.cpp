#include "daemon/processes/process_registry.h"

#include "protocol/name_table.h"

#include <algorithm>
#include <array>

namespace lpd::daemon {
namespace {

using PS = ProcessState;
using PE = ProcessEvent;
using PA = ProcessAction;

constexpr std::array<Transition, 10> kLifecycle{{
    // from        event               to           action
    {PS::kStarting, PE::kMatched,        PS::kReady,    PA::kAnswerReady},
    {PS::kStarting, PE::kExited,         PS::kExited,   PA::kFailStart},  // reported at exit, not at the timeout
    {PS::kStarting, PE::kTimedOut,       PS::kStopping, PA::kFailStartAndKill},
    {PS::kStarting, PE::kTimedOutKept,   PS::kStarting, PA::kFailStart},  // keeps running, keeps watching
    {PS::kStarting, PE::kLineLimit,      PS::kStopping, PA::kFailStartAndKill},
    {PS::kStarting, PE::kKillRequested,  PS::kStopping, PA::kFailStartAndKill},
    {PS::kReady,    PE::kExited,         PS::kExited,   PA::kRecordEnd},
    {PS::kReady,    PE::kKillRequested,  PS::kStopping, PA::kKill},
    {PS::kStopping, PE::kExited,         PS::kKilled,   PA::kRecordEnd},
    {PS::kStopping, PE::kKillRequested,  PS::kStopping, PA::kNone},      // joins the kill in progress
}};

constexpr std::array<std::pair<ProcessState, std::string_view>, 6> kStateNames{{
    {PS::kStarting, "starting"},
    {PS::kReady, "ready"},
    {PS::kStopping, "stopping"},
    {PS::kExited, "exited"},
    {PS::kKilled, "killed"},
    {PS::kLost, "lost"},
}};

}  // namespace

std::string_view to_string(ProcessState state) { return protocol::name_in(kStateNames, state, "unknown"); }

std::optional<ProcessState> proc_state_from_string(std::string_view name) {
  return protocol::value_named(kStateNames, name);
}

bool is_running(ProcessState state) {
  return state == PS::kStarting || state == PS::kReady || state == PS::kStopping;
}

std::string_view to_string(ProcessEvent event) {
  switch (event) {
    case PE::kMatched: return "matched";
    case PE::kExited: return "exited";
    case PE::kTimedOut: return "timed_out";
    case PE::kTimedOutKept: return "timed_out_kept";
    case PE::kLineLimit: return "line_limit";
    case PE::kKillRequested: return "kill_requested";
  }
  return "unknown";
}

std::span<const Transition> lifecycle() { return kLifecycle; }

std::optional<Transition> lifecycle_step(ProcessState from, ProcessEvent event) {
  for (const auto& t : kLifecycle)
    if (t.from == from && t.event == event) return t;
  return std::nullopt;
}

ProcessRegistry::Entry* ProcessRegistry::entry(const ProcessKey& key) {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

const ProcessRegistry::Entry* ProcessRegistry::entry(const ProcessKey& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

const SupervisedProcess* ProcessRegistry::find(const ProcessKey& key) const {
  const Entry* e = entry(key);
  return e ? &e->record : nullptr;
}

SupervisedProcess* ProcessRegistry::mutable_record(const ProcessKey& key) {
  Entry* e = entry(key);
  return e ? &e->record : nullptr;
}

// -- picking among owners ---------------------------------------------
std::string uid_text(uid_t uid) { return "uid " + std::to_string(uid); }

namespace {

/// Picks among the records that match an address: the caller's own when it
/// has exactly one; else, among other users' (their running ones only when
/// `running_first`, all are of one scope and one runs), the only one. nullopt when none match;
/// throws conflict when the choice is not the caller's to make implicitly:
/// several of the caller's own (listed by full name), one other user's in
/// several scopes, or several owners (listed by name: who owns a helper of
/// that name is metadata anyone may see in proc.list).
std::optional<ProcessKey> pick(const std::vector<const SupervisedProcess*>& matches, uid_t caller,
                               const ProcessAddress& address, const std::string& what, const OwnerNamer& owner_name) {
  if (matches.empty()) return std::nullopt;
  std::vector<ProcessKey> own;
  for (const auto* r : matches)
    if (r->owner == caller) own.push_back(r->key());
  if (own.size() == 1) return own.front();
  if (!own.empty()) {
    // The caller's own, in several scopes (no scope given), ended ones too:
    // a kill from a third directory is not lpd's to aim at one project.
    // Their full names are the caller's to know.
    std::string message = std::to_string(own.size()) + " of your processes match " + what + ": ";
    for (std::size_t i = 0; i < own.size(); ++i) message += (i ? ", " : "") + own[i].full_name();
    throw protocol::Error(protocol::ErrorCode::kConflict, message + "; give one of these full names");
  }
  std::vector<const SupervisedProcess*> candidates = matches;
  // Among owners of one scope only: across scopes (a name without one),
  // ended helpers count, as the caller's own do above.
  const bool one_scope = std::all_of(matches.begin(), matches.end(),
                                     [&](const SupervisedProcess* r) { return r->scope == matches.front()->scope; });
  if (address.running_first && one_scope) {
    std::vector<const SupervisedProcess*> running;
    for (const auto* r : matches)
      if (is_running(r->state)) running.push_back(r);
    if (!running.empty()) candidates = std::move(running);
  }
  if (candidates.size() == 1) return candidates.front()->key();
  std::vector<uid_t> owners;
  for (const auto* r : candidates)
    if (std::find(owners.begin(), owners.end(), r->owner) == owners.end()) owners.push_back(r->owner);
  std::sort(owners.begin(), owners.end());
  if (owners.size() == 1)
    throw protocol::Error(protocol::ErrorCode::kConflict,
                          "ambiguous: " + owner_name(owners.front()) + " has " + std::to_string(candidates.size()) +
                              " processes matching " + what + " in different scopes; give the scope (or full_name)");
  std::string message = "ambiguous: " + what + " exists for users ";
  for (std::size_t i = 0; i < owners.size(); ++i) message += (i ? ", " : "") + owner_name(owners[i]);
  message += "; use --owner (field \"owner\") to say whose";
  throw protocol::Error(protocol::ErrorCode::kConflict, message);
}

}  // namespace

ProcessKey ProcessRegistry::resolve(const ProcessAddress& address, uid_t caller, const OwnerNamer& owner_name) const {
  auto matching = [&](const std::optional<std::string>& scope) {
    std::vector<const SupervisedProcess*> out;
    for (const auto& [key, e] : entries_)
      if (key.name == address.name && (!scope || key.scope == *scope) && (!address.owner || key.owner == *address.owner))
        out.push_back(&e.record);
    return out;
  };
  const std::string scope = address.scope.value_or("");
  const std::string in_scope = scope.empty() ? "" : " in scope " + scope;
  if (auto key = pick(matching(scope), caller, address, "\"" + address.name + "\"" + in_scope, owner_name)) return *key;
  if (!address.scope) {
    // An old client knows no scopes: the one helper of that name it can mean.
    if (auto key = pick(matching(std::nullopt), caller, address, "\"" + address.name + "\"", owner_name)) return *key;
  }
  std::string message = "no process named \"" + address.name + "\"" + in_scope;
  if (address.owner) message += " owned by " + owner_name(*address.owner);
  std::vector<std::string> elsewhere;
  for (const auto* record : matching(std::nullopt))
    if (record->owner == caller) elsewhere.push_back(record->key().full_name());
  if (!elsewhere.empty()) {
    message += "; yours of that name: ";
    for (std::size_t i = 0; i < elsewhere.size(); ++i) message += (i ? ", " : "") + elsewhere[i];
  }
  throw protocol::Error(protocol::ErrorCode::kNotFound, message);
}

std::vector<const SupervisedProcess*> ProcessRegistry::all() const {
  std::vector<const SupervisedProcess*> out;
  out.reserve(entries_.size());
  for (const auto& [_, e] : entries_) out.push_back(&e.record);
  return out;
}

// proc.list pages.
std::vector<const SupervisedProcess*> ProcessRegistry::after_generation(std::uint64_t after) const {
  std::vector<const SupervisedProcess*> out;
  for (const auto& [_, e] : entries_)
    if (e.record.generation > after) out.push_back(&e.record);
  std::sort(out.begin(), out.end(),
            [](const SupervisedProcess* a, const SupervisedProcess* b) { return a->generation < b->generation; });
  return out;
}

EnsurePlan ProcessRegistry::plan_ensure(const ProcessKey& key, bool restart) const {
  const Entry* e = entry(key);
  if (!e) return EnsurePlan::kStart;
  switch (e->record.state) {
    case PS::kStarting:
      return EnsurePlan::kJoin;
    case PS::kStopping:
      return EnsurePlan::kStopThenStart;
    case PS::kReady:
      // Constant time whatever the log size: one read of /proc/PID/stat.
      // Only a confirmed end starts another; kUnknown (lpd could not look)
      // leaves it to the exit watch, rather than run the server twice.
      if (const auto liveness = liveness_(e->record.pid, e->record.start_time);
          liveness == Liveness::kGone || liveness == Liveness::kReused)
        return EnsurePlan::kStart;
      return restart ? EnsurePlan::kStopThenStart : EnsurePlan::kReuse;
    case PS::kExited:
    case PS::kKilled:
    case PS::kLost:
      return EnsurePlan::kStart;
  }
  return EnsurePlan::kStart;
}

std::uint64_t ProcessRegistry::begin(SupervisedProcess record) {
  record.generation = next_generation_++;
  record.state = PS::kStarting;
  const ProcessKey key = record.key();
  Entry* e = entry(key);
  if (!e) e = &entries_.emplace(key, Entry{}).first->second;
  e->record = std::move(record);
  return e->record.generation;
}

void ProcessRegistry::restore(SupervisedProcess record) {
  record.generation = next_generation_++;
  const ProcessKey key = record.key();
  entries_[key] = Entry{std::move(record), {}};
}

void ProcessRegistry::erase(const ProcessKey& key) {
  auto it = entries_.find(key);
  if (it != entries_.end()) entries_.erase(it);
}

void ProcessRegistry::add_waiter(const ProcessKey& key, Waiter waiter) {
  if (Entry* e = entry(key)) e->waiters.push_back(std::move(waiter));
}

std::size_t ProcessRegistry::waiters(const ProcessKey& key) const {
  const Entry* e = entry(key);
  return e ? e->waiters.size() : 0;
}

void ProcessRegistry::fail_waiters(const ProcessKey& key, const StartFailure& failure) {
  Entry* e = entry(key);
  if (!e) return;
  auto waiters = std::move(e->waiters);
  e->waiters.clear();
  const SupervisedProcess snapshot = e->record;
  for (auto& waiter : waiters) waiter(snapshot, &failure);
}

std::optional<Transition> ProcessRegistry::fire(const ProcessKey& key, std::uint64_t generation, ProcessEvent event,
                                                const StartFailure* failure) {
  Entry* e = entry(key);
  if (!e || e->record.generation != generation) return std::nullopt;
  const auto step = lifecycle_step(e->record.state, event);
  if (!step) return std::nullopt;
  e->record.state = step->to;
  if (step->action == PA::kAnswerReady || step->action == PA::kFailStart || step->action == PA::kFailStartAndKill) {
    // Waiters may call back into the registry (a new ensure): hand them a
    // snapshot and an emptied list.
    auto waiters = std::move(e->waiters);
    e->waiters.clear();
    const SupervisedProcess snapshot = e->record;
    static const StartFailure kUnexplained{protocol::ErrorCode::kInternal, "the start failed"};
    const StartFailure* why = step->action == PA::kAnswerReady ? nullptr : (failure ? failure : &kUnexplained);
    for (auto& waiter : waiters) waiter(snapshot, why);
  }
  return step;
}

}  // namespace lpd::daemon
