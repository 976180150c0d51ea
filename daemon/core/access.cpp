#include "daemon/core/access.h"

#include <algorithm>
#include <string>

#include "protocol/error.h"

namespace lpd::daemon {

using nlohmann::json;

namespace {

[[noreturn]] void deny(const Peer& peer, uid_t owner, std::string_view what, std::string_view verb) {
  throw protocol::Error(protocol::ErrorCode::kPermissionDenied,
                        std::string(what) + " belongs to uid " + std::to_string(owner) + "; uid " +
                            std::to_string(peer.uid) + " may not " + std::string(verb));
}

// The lists below are the access model's whole definition of metadata;
// protocol/README.md ("Who sees what") repeats them for clients.
// A supervised run's returncode and signal are its job's (kJobFields): the
// same facts, shown alike in `lpctl runs -a` and in the job events. Its
// `result` (the verdict, with test names) is content.
const std::vector<std::string_view> kRunFields = {"run_id",     "owner_uid", "status",     "pid",
                                                  "hostname",   "created_at", "ended_at",  "supervised",
                                                  "workers",    "returncode", "signal"};
// "payload" is reduced again as a job (it carries the job's `text`).
const std::vector<std::string_view> kJobFields = {"type", "id", "state", "returncode", "payload"};
const std::vector<std::string_view> kPauseFields = {
    "pause_id", "run_id",         "nodeid",    "kind",     "status",  "owner_uid",  "pid",
    "pid_start_time", "worker_id", "hostname", "timeout", "created_at", "resolved_at", "result"};
const std::vector<std::string_view> kProcessFields = {
    "name",     "owner",          "pid",         "start_time", "state",          "started_at",
    "ready_at", "ended_at",       "uptime_seconds", "exit_status", "adopted",    "timeout",
    "max_read_lines", "keep_on_timeout", "ready_offset", "log_path"};
const std::vector<std::string_view> kCrashFields = {"crash_id",  "flaky",     "run_id",    "owner_uid", "nodeid",
                                                    "where",     "phase",
                                                    "worker_id", "pid",       "signal",     "signal_name", "exit_code",
                                                    "crash_time", "duration", "attempt"};
const std::vector<std::string_view> kTestFields = {"nodeid", "worker_id", "pid", "outcome", "phase", "duration",
                                                   "attempt"};
const std::vector<std::string_view> kNoFields = {};

}  // namespace

bool may_access(const Peer& peer, uid_t owner, const AccessPolicy& policy) {
  if (peer.uid == 0 || peer.uid == owner) return true;
  if (!policy.admin_gid) return false;
  return peer.gid == *policy.admin_gid ||
         std::find(peer.groups.begin(), peer.groups.end(), *policy.admin_gid) != peer.groups.end();
}

void require_may_act(const Peer& peer, uid_t owner, std::string_view what, const AccessPolicy& policy) {
  if (!may_access(peer, owner, policy)) deny(peer, owner, what, "act on it");
}

void require_may_read(const Peer& peer, uid_t owner, std::string_view what, const AccessPolicy& policy) {
  if (!may_access(peer, owner, policy)) deny(peer, owner, what, "read its content");
}

const std::vector<std::string_view>& metadata_fields(RecordKind kind) {
  switch (kind) {
    case RecordKind::kRun: return kRunFields;
    case RecordKind::kJob: return kJobFields;
    case RecordKind::kPause: return kPauseFields;
    case RecordKind::kProcess: return kProcessFields;
    case RecordKind::kCrash: return kCrashFields;
    case RecordKind::kTest: return kTestFields;
    case RecordKind::kOther: return kNoFields;
  }
  return kNoFields;
}

json metadata_only(RecordKind kind, const json& record) {
  json out = json::object();
  if (record.is_object()) {
    for (std::string_view name : metadata_fields(kind)) {
      auto it = record.find(name);
      if (it == record.end()) continue;
      // A job's payload is itself a job record: its `text` is content.
      if (kind == RecordKind::kJob && name == "payload") {
        json payload = metadata_only(RecordKind::kJob, *it);
        payload.erase("redacted");
        out.emplace(name, std::move(payload));
      } else {
        out.emplace(name, *it);
      }
    }
  }
  out["redacted"] = true;
  return out;
}

json visible_to(const Peer& peer, const AccessPolicy& policy, uid_t owner, RecordKind kind, json record) {
  if (may_access(peer, owner, policy)) return record;
  return metadata_only(kind, record);
}

RecordKind record_kind_of_event(std::string_view type) {
  auto starts = [type](std::string_view prefix) { return type.substr(0, prefix.size()) == prefix; };
  if (starts("run.")) return RecordKind::kRun;
  if (type == "job") return RecordKind::kJob;
  if (starts("pause.")) return RecordKind::kPause;
  if (starts("process.")) return RecordKind::kProcess;
  if (type == "crash") return RecordKind::kCrash;
  if (starts("test.")) return RecordKind::kTest;
  if (type == "session.error") return RecordKind::kTest;  // its phase, nodeid, worker: a test event's metadata
  return RecordKind::kOther;
}

}  // namespace lpd::daemon
