#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "daemon/processes/process_name.h"

namespace lpd::daemon {

/// Leases records which connections hold which helper (`proc.ensure` with
/// `"lease": true`), so lpd can stop a helper once the last holder is gone
/// and refuse to let one holder's teardown kill it under the others
/// (pytest-xprocess#144). A connection holds a helper at most once; its
/// end (or `proc.release`) drops every hold it had. Plain bookkeeping: no
/// I/O, no timers; ProcessService acts on what it says.
class Leases {
 public:
  /// A lease ensure from `session` is waiting for `key` to be ready. A
  /// waiting connection counts as a holder: the start is for it.
  void wait(const ProcessKey& key, std::uint64_t session);
  /// That ensure was answered. When `ready`, `session` holds incarnation
  /// `generation` (holds of an older incarnation are forgotten), unless the
  /// connection left meanwhile (peer_gone took its wait away): then it
  /// holds nothing.
  void settle(const ProcessKey& key, std::uint64_t session, std::uint64_t generation, bool ready);
  /// proc.release: `session` stops holding `key`. Returns whether it held it.
  bool release(const ProcessKey& key, std::uint64_t session);
  /// The connection is gone: every hold and wait of it ends. Returns the
  /// helpers it held or waited for, so the caller can check each.
  std::vector<ProcessKey> peer_gone(std::uint64_t session);
  /// The incarnation ended (exited, killed, lost): nobody holds it any
  /// more; waits stay, they are for the next start.
  void ended(const ProcessKey& key);

  bool holds(const ProcessKey& key, std::uint64_t session) const;
  /// Holders of incarnation `generation` plus the connections waiting for it.
  std::size_t holders(const ProcessKey& key, std::uint64_t generation) const;

 private:
  struct Entry {
    std::uint64_t generation = 0;
    std::set<std::uint64_t> holders;
    std::multiset<std::uint64_t> waiting;
  };
  std::map<ProcessKey, Entry> entries_;
};

/// What a `proc.kill` from a connection does to a leased helper: a holder
/// that is not the last one only lets go (its teardown must not kill the
/// helper under the others); `force`, a non-holder (root, the owner from a
/// shell) or the last holder kills it as before.
enum class KillVerdict { kKill, kReleaseOnly };
KillVerdict kill_verdict(bool force, bool caller_holds, std::size_t holders_including_caller);

}  // namespace lpd::daemon
