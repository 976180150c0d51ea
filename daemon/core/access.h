#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include "daemon/core/peer.h"

namespace lpd::daemon {

/// Who may read an object's content and act on it: its owner, root, and
/// members of the admin group (`lpd start --admin-group`). Everyone who may
/// connect sees every object's metadata (see RecordKind).
struct AccessPolicy {
  std::optional<gid_t> admin_gid;
};

/// The one predicate of lpd's access model: true when `peer` is the owner,
/// root, or in the admin group (primary or supplementary). Reading content
/// and acting (resume, kill, stop) are both decided by it.
bool may_access(const Peer& peer, uid_t owner, const AccessPolicy& policy);

/// The same predicate, under the name the acting call sites use.
inline bool may_act_on(const Peer& peer, uid_t owner, const AccessPolicy& policy) {
  return may_access(peer, owner, policy);
}

/// Throws protocol::Error permission_denied naming `what` (e.g. "pause 3f2a")
/// and its owner's uid when `peer` may not act on it.
void require_may_act(const Peer& peer, uid_t owner, std::string_view what, const AccessPolicy& policy);

/// Throws protocol::Error permission_denied naming `what` and its owner's uid
/// when `peer` may not read its content.
void require_may_read(const Peer& peer, uid_t owner, std::string_view what, const AccessPolicy& policy);

/// The kinds of record lpd hands out. For each, metadata_fields() is the
/// whole list of fields anyone who may connect may see; every other field
/// (argv, cwd, output, messages, tracebacks, task text, reasons...) is
/// content, for the owner, root and the admin group only. A field not on
/// the list is content, so a field added later stays private until someone
/// decides otherwise.
enum class RecordKind {
  kRun,      // run.list, run.started / run.ended
  kJob,      // the "job" event (pytest-relay-run's payload)
  kPause,    // pause.list, pause.watch, pause.* events
  kProcess,  // proc.list, process.* events
  kCrash,    // crash.list, crash events
  kTest,     // test.start / test.finish events
  kOther,    // anything else: no field is metadata
};

/// The metadata field names of `kind`, in the order protocol/README.md lists them.
const std::vector<std::string_view>& metadata_fields(RecordKind kind);

/// `record` cut down to the metadata fields of `kind` (nested job payloads
/// too), with "redacted": true so a reader can tell content was withheld.
/// A record that is not a JSON object becomes {"redacted": true}.
nlohmann::json metadata_only(RecordKind kind, const nlohmann::json& record);

/// The one place list and stream operations decide what a peer sees of an
/// object owned by `owner`: the whole record for those who may_access() it,
/// metadata_only() for everyone else.
nlohmann::json visible_to(const Peer& peer, const AccessPolicy& policy, uid_t owner, RecordKind kind,
                          nlohmann::json record);

/// The kind of record an event of `type` carries as its data
/// ("pause.created" -> kPause, "job" -> kJob, an unknown type -> kOther).
RecordKind record_kind_of_event(std::string_view type);

}  // namespace lpd::daemon
